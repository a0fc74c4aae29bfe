//! The lecture's two programs that hang ("Nothing is happening, why?"), which conlab reports
//! as `Error::Deadlock` instead.
//!
//! `cargo run --release -p conlab --example deadlocks`

use std::sync::{Arc, Barrier, Mutex};

use conlab_exec::{Executor, TaskHandle, ThreadPool};

fn main() {
    // wait_on_future: a one-worker pool whose only worker waits on a task queued behind it.
    let executor = Arc::new(ThreadPool::new(1));
    let inner = executor.clone();
    let t = executor
        .submit(move || {
            let f = inner.submit(|| 5u64.pow(2)).expect("pool is open");
            match f.wait() {
                Ok(v) => println!("{v}\nDONE!"),
                Err(e) => println!("wait_on_future: {e}"),
            }
        })
        .expect("pool is open");
    t.wait().expect("the outer task returns");

    // wait_on_a / wait_on_b: two tasks on two workers, each waiting for the other.
    type Slot = Arc<Mutex<Option<TaskHandle<u64>>>>;
    let executor = ThreadPool::new(2);
    let (a, b): (Slot, Slot) = Default::default();
    let both_started = Arc::new(Barrier::new(3));
    let wait_on = |other: &Slot, value: u64| {
        let (other, started) = (other.clone(), both_started.clone());
        move || {
            started.wait(); // the lecture's `time.sleep(5)`
            let handle = other.lock().expect("no panic holds it").take();
            if let Some(Err(e)) = handle.map(TaskHandle::wait) {
                println!("{e}");
            }
            value
        }
    };
    let fa = executor.submit(wait_on(&b, 5)).expect("pool is open"); // wait_on_b
    let fb = executor.submit(wait_on(&a, 6)).expect("pool is open"); // wait_on_a
    *a.lock().expect("no panic holds it") = Some(fa);
    *b.lock().expect("no panic holds it") = Some(fb);
    both_started.wait();
    executor.shutdown(true, false);
}
