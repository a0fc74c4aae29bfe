//! The lecture's asyncio minitask 7: boil the kettle (3 s) and clean the cups (2 s), first one
//! after the other (5.00 s), then as two tasks on one event loop (3.00 s).
//!
//! `cargo run --release -p conlab --example kettle`

use std::time::{Duration, Instant};

use conlab_exec::AsyncPool;

async fn perform_task(duration: Duration, task_name: &'static str) {
    tokio::time::sleep(duration).await;
    println!("{task_name} is done");
}

fn main() -> Result<(), conlab_exec::Error> {
    let pool = AsyncPool::new(1)?;

    let s = Instant::now();
    pool.run(async {
        perform_task(Duration::from_secs(3), "boiling kettle").await;
        perform_task(Duration::from_secs(2), "cleaning cups").await;
    })?;
    println!("Executed in {:.2} seconds.", s.elapsed().as_secs_f64());

    let s = Instant::now();
    let task1 = pool
        .submit_future(perform_task(Duration::from_secs(3), "boiling kettle"))
        .map_err(|_| conlab_exec::Error::Closed)?;
    let task2 = pool
        .submit_future(perform_task(Duration::from_secs(2), "cleaning cups"))
        .map_err(|_| conlab_exec::Error::Closed)?;
    task1.wait()?;
    task2.wait()?;
    println!("Executed in {:.2} seconds.", s.elapsed().as_secs_f64());
    Ok(())
}
