//! The lecture's creator-consumer between two processes (`multiprocessing.Queue`, and `Pipe`
//! with `conn.send([42, None, 'hello'])`): this program starts itself again as the consumer
//! and sends it values, one JSON line each, over a pipe, until the sentinel -1.
//!
//! `cargo run --release -p conlab --example creator_consumer`

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitCode, Stdio};

const ROLE: &str = "CONLAB_EXAMPLE_ROLE";
const SENTINEL: i64 = -1;

fn consumer() -> ExitCode {
    for line in BufReader::new(std::io::stdin().lock()).lines() {
        let Ok(line) = line else { break };
        let Ok(data) = serde_json::from_str::<i64>(&line) else {
            eprintln!("consumer: not a number: {line}");
            return ExitCode::FAILURE;
        };
        println!("data found to be processed: {data}");
        println!("{}", data * 2);
        if data == SENTINEL {
            break;
        }
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    if std::env::var_os(ROLE).is_some() {
        return consumer();
    }
    let Ok(exe) = std::env::current_exe() else {
        return ExitCode::FAILURE;
    };
    let Ok(mut child) = Command::new(exe)
        .env(ROLE, "consumer")
        .stdin(Stdio::piped())
        .spawn()
    else {
        eprintln!("could not start the consumer process");
        return ExitCode::FAILURE;
    };
    let Some(mut pipe) = child.stdin.take() else {
        return ExitCode::FAILURE;
    };
    println!("Creating data and putting it on the queue");
    for item in [5i64, 10, 13, SENTINEL] {
        println!("putting in {item}");
        if writeln!(pipe, "{item}").is_err() {
            break;
        }
    }
    drop(pipe);
    match child.wait() {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}
