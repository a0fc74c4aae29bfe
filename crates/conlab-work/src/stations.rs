//! The lecture's 8 service stations, run: "If each job must go through each station, the
//! throughput can be 1 job per unit time, while the latency is 8. If each job needs only 1
//! service station and any service station will do, the throughput can be 8 jobs per unit
//! time, and the latency is 1."
//!
//! Each station is a thread that spends one unit (a sleep: a station is busy, not
//! computing, so 8 of them fit on 2 cores) per job. Jobs are handed over on rendezvous
//! channels, so a job enters a station only when that station is free, as in the lecture.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};

/// What one arrangement of stations measured.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Stations {
    /// Jobs that went through.
    pub jobs: u64,
    /// Jobs finished per unit of time, from the first job's entry to the last one's exit.
    pub throughput_per_unit: f64,
    /// Median time a job spent in the system, in units.
    pub latency_units: f64,
}

struct Job {
    entered: Option<Instant>,
}

/// `stations` stations in a row; every job visits each.
pub fn pipeline(stations: usize, jobs: u64, unit: Duration) -> Stations {
    let stations = stations.max(1);
    let (source, mut upstream) = bounded::<Job>(0);
    let mut workers = Vec::new();
    for i in 0..stations {
        let (tx, rx) = bounded::<Job>(0);
        let from = std::mem::replace(&mut upstream, rx);
        workers.push(std::thread::spawn(move || {
            station(&from, &tx, unit, i == 0)
        }));
    }
    run(source, upstream, jobs, unit, workers)
}

/// `stations` stations side by side; a job visits whichever is free.
pub fn parallel(stations: usize, jobs: u64, unit: Duration) -> Stations {
    let (source, from) = bounded::<Job>(0);
    let (to, sink) = bounded::<Job>(stations);
    let workers = (0..stations.max(1))
        .map(|_| {
            let (from, to) = (from.clone(), to.clone());
            std::thread::spawn(move || station(&from, &to, unit, true))
        })
        .collect();
    drop((from, to));
    run(source, sink, jobs, unit, workers)
}

/// One station: take a job, spend a unit on it, pass it on.
fn station(from: &Receiver<Job>, to: &Sender<Job>, unit: Duration, first: bool) {
    for mut job in from.iter() {
        if first {
            job.entered = Some(Instant::now());
        }
        std::thread::sleep(unit);
        if to.send(job).is_err() {
            return;
        }
    }
}

fn run(
    source: Sender<Job>,
    sink: Receiver<Job>,
    jobs: u64,
    unit: Duration,
    workers: Vec<std::thread::JoinHandle<()>>,
) -> Stations {
    let feeder = std::thread::spawn(move || {
        for _ in 0..jobs {
            if source.send(Job { entered: None }).is_err() {
                return;
            }
        }
    });
    let mut latencies = Vec::with_capacity(jobs as usize);
    let mut first_entry: Option<Instant> = None;
    let mut last_exit = Instant::now();
    for job in sink.iter().take(jobs as usize) {
        last_exit = Instant::now();
        if let Some(entered) = job.entered {
            first_entry = Some(first_entry.map_or(entered, |f| f.min(entered)));
            latencies.push(last_exit.duration_since(entered).as_secs_f64() / unit.as_secs_f64());
        }
    }
    let _ = feeder.join();
    drop(sink);
    for w in workers {
        let _ = w.join();
    }
    latencies.sort_by(f64::total_cmp);
    let span = first_entry.map_or(0.0, |f| {
        last_exit.duration_since(f).as_secs_f64() / unit.as_secs_f64()
    });
    Stations {
        jobs,
        throughput_per_unit: if span > 0.0 { jobs as f64 / span } else { 0.0 },
        latency_units: latencies.get(latencies.len() / 2).copied().unwrap_or(0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_job_comes_out_of_both_arrangements() {
        let p = pipeline(3, 5, Duration::from_micros(200));
        let q = parallel(3, 5, Duration::from_micros(200));
        assert_eq!((p.jobs, q.jobs), (5, 5));
        // A job's time in a pipeline of three is at least three units; in parallel, one.
        assert!(p.latency_units >= 3.0, "{p:?}");
        assert!(q.latency_units >= 1.0, "{q:?}");
    }
}
