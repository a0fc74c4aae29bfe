//! The lecture's `Pool(processes=3).map(doubler, numbers)` and `pr.py`'s
//! `ProcessPoolExecutor().map(is_prime, PRIMES)`.
//!
//! `cargo run --release -p conlab --example process_pool_map`

use std::process::ExitCode;

use conlab_exec::processes::serve_if_worker;
use conlab_exec::{Executor, ProcessPool};
use conlab_work::Double;
use conlab_work::IsPrime;
use conlab_work::primes::LECTURE_PRIMES;

fn main() -> ExitCode {
    if let Some(code) = serve_if_worker(&conlab_lecture::registry()) {
        return code;
    }
    let pool = match ProcessPool::builder().workers(3).build() {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let numbers = [5, 10, 20];
    let doubled: Vec<i64> = pool
        .map(numbers.map(Double))
        .filter_map(Result::ok)
        .collect();
    println!("{doubled:?}");

    for (number, prime) in LECTURE_PRIMES
        .iter()
        .zip(pool.map(LECTURE_PRIMES.map(IsPrime)))
    {
        match prime {
            Ok(p) => println!("{number} is prime: {}", if p { "True" } else { "False" }),
            Err(e) => println!("{number}: {e}"),
        }
    }
    ExitCode::SUCCESS
}
