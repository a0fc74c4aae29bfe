//! The lecture's `future.done()` / `future.result()`: a task that returns after 5 s (here
//! 0.5 s) is not done at once, is done later, and its result is then there — on a thread
//! pool and on a process pool.
//!
//! `cargo run --release -p conlab --example futures_done_result`

use std::process::ExitCode;
use std::time::Duration;

use conlab_exec::processes::serve_if_worker;
use conlab_exec::{Executor, ProcessPool, ThreadPool};
use conlab_work::SleepMs;

fn main() -> ExitCode {
    if let Some(code) = serve_if_worker(&conlab_lecture::registry()) {
        return code;
    }
    let pool = ThreadPool::new(3);
    let future = pool
        .submit(|| {
            std::thread::sleep(Duration::from_millis(500));
            "hello"
        })
        .expect("a fresh pool accepts tasks");
    println!("{}", future.is_done());
    std::thread::sleep(Duration::from_millis(600));
    println!("{}", future.is_done());
    println!("Result: {}", future.wait().expect("the task does not fail"));

    let Ok(processes) = ProcessPool::builder().workers(3).build() else {
        eprintln!("could not start worker processes");
        return ExitCode::FAILURE;
    };
    let future = processes
        .submit(SleepMs(500))
        .expect("a fresh pool accepts tasks");
    println!("{}", future.is_done());
    std::thread::sleep(Duration::from_millis(600));
    println!("{}", future.is_done());
    ExitCode::SUCCESS
}
