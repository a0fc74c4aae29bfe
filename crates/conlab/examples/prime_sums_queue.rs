//! The lecture's prime sums over a queue of two worker threads (`find_rand` / `is_prime`),
//! then the same with the GIL emulated, and with two worker processes.
//!
//! `cargo run --release -p conlab --example prime_sums_queue`

use std::process::ExitCode;
use std::time::Instant;

use conlab_exec::processes::serve_if_worker;
use conlab_exec::{Executor, Model, Pool, PoolOptions};
use conlab_work::Primes;

fn main() -> ExitCode {
    if let Some(code) = serve_if_worker(&conlab_lecture::registry()) {
        return code;
    }
    let rand_list = [400_000u64, 500_000, 600_000];
    for (model, gil) in [
        (Model::Threads, false),
        (Model::Threads, true),
        (Model::Processes, false),
    ] {
        let options = PoolOptions {
            workers: Some(2),
            gil,
            ..PoolOptions::default()
        };
        let pool = match Pool::new(model, options) {
            Ok(pool) => pool,
            Err(e) => {
                eprintln!("starting a {model} pool: {e}");
                return ExitCode::FAILURE;
            }
        };
        let start = Instant::now();
        let mut sum_primes_list: Vec<u64> = pool
            .map(rand_list.map(Primes))
            .filter_map(Result::ok)
            .collect();
        let end_time = start.elapsed();
        sum_primes_list.sort();
        println!(
            "{model}{}: {sum_primes_list:?}",
            if gil { " (GIL)" } else { "" }
        );
        println!("Execution time = {:.5}", end_time.as_secs_f64());
    }
    ExitCode::SUCCESS
}
