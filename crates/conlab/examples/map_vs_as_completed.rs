//! The lecture's `map` (results in input order) vs `as_completed` (results as they finish),
//! with five tasks sleeping 1 to 5 units (a unit is 100 ms here, a second in the lecture).
//!
//! `cargo run --release -p conlab --example map_vs_as_completed`

use std::time::Duration;

use conlab_exec::{Executor, ThreadPool, as_completed};

fn return_after(num: u64, units: u64) -> String {
    std::thread::sleep(Duration::from_millis(100 * units));
    format!("Return of {num}")
}

fn main() {
    // "randint(1, 5)", fixed so the run is repeatable: task 0 sleeps longest.
    let units = [5u64, 1, 3, 2, 4];
    let pool = ThreadPool::new(5);

    let mapped: Vec<String> = pool
        .map((0..5u64).map(|x| move || return_after(x, units[x as usize])))
        .map(|r| r.expect("no task fails"))
        .collect();
    println!("map:          {mapped:?}");

    let futures: Vec<_> = (0..5u64)
        .map(|x| {
            pool.submit(move || return_after(x, units[x as usize]))
                .expect("pool is open")
        })
        .collect();
    let completed: Vec<String> = as_completed(futures)
        .map(|(_, r)| r.expect("no task fails"))
        .collect();
    println!("as_completed: {completed:?}");
}
