//! Apache vs nginx, the lecture's way: Apache's default MPM gives each connection a process
//! of its own (conlab's `prefork`); nginx runs an event loop that serves many connections per
//! process (conlab's `event`). Both are loaded with more connections than prefork has
//! processes; the thread pool (Apache's worker MPM) runs as a third row, and with `--peers`
//! the real nginx and Apache httpd run beside them.
//!
//! Each server runs in its own process tree, so its CPU time and memory are its own. The
//! generator shares the machine's cores with the server, so its speed, not the server's,
//! caps requests per second on a small machine: the verdict compares requests per *server
//! CPU-second*, the architecture's cost per request, and memory (PSS of the whole tree).

use std::time::Duration;

use conlab_http::ServerModel;

use super::{Context, Experiment};
use crate::Error;
use crate::finding::{Axis, Claim, Figure, Outcome, Series, Verdict};
use crate::machine::LoadLimit;
use crate::servers::{self, Contender, Measurement, peers};

/// The experiment.
pub const EXPERIMENT: Experiment = Experiment {
    name: "web",
    title: "Apache vs nginx: a process per connection vs an event loop",
    claim: Claim {
        quote: "Usually, Apache creates a new process for each new request; NGINX uses \
                asynchronous event-driven architecture ... NGINX can cope with around four \
                times more requests per second",
        slide: "Apache vs. Nginx",
        figure: "nginx about 4x Apache's requests per second, in less memory (two charts)",
    },
    load_limit: LoadLimit::TIMING,
    measure,
};

/// The bar, in requests per server CPU-second, event loop over prefork: "around four times",
/// read as within a quarter of the lecture's 4. (Measured here, conlab's two architectures
/// differ by about 2x and Apache and nginx by about 7x: docs/benchmarks.md.)
pub const MIN_RATIO: f64 = 3.0;

/// Below this much server CPU in a window, the CPU counters are too coarse to divide by.
const MIN_CPU_S: f64 = 0.05;

/// The set-up of one run.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Setup {
    /// prefork's processes (Apache's prefork serves one connection per process).
    prefork: usize,
    /// threadpool's threads (Apache's worker MPM).
    threads: usize,
    /// Connections: more than prefork has processes, as the lecture's load is.
    connections: usize,
    /// How long each server is loaded in each round.
    window: Duration,
    /// Rounds, each loading every server once.
    rounds: usize,
}

fn setup(context: &Context<'_>) -> Setup {
    context.budget.pick(
        Setup {
            prefork: 32,
            threads: 64,
            connections: 128,
            window: Duration::from_millis(400),
            rounds: 3,
        },
        Setup {
            prefork: 8,
            threads: 16,
            connections: 32,
            window: Duration::from_millis(300),
            rounds: 1,
        },
    )
}

fn measure(context: &Context<'_>) -> Result<Outcome, Error> {
    let s = setup(context);
    let mut contenders = vec![
        Contender::Conlab {
            model: ServerModel::Prefork,
            workers: Some(s.prefork),
        },
        Contender::Conlab {
            model: ServerModel::Threadpool,
            workers: Some(s.threads),
        },
        Contender::Conlab {
            model: ServerModel::Event,
            workers: Some(context.cores),
        },
    ];
    let mut missing = Vec::new();
    if context.peers {
        for (program, contender) in [
            (
                "nginx",
                Contender::Nginx {
                    workers: context.cores,
                },
            ),
            ("apache2", Contender::ApachePrefork { workers: s.prefork }),
        ] {
            if peers::installed(program) {
                contenders.push(contender);
            } else {
                missing.push(format!("{program} is not installed: its row is left out"));
            }
        }
    }
    let (rounds, left_out) = servers::alternate(
        context.servers,
        &contenders,
        s.connections,
        s.window,
        s.rounds,
        "/hello",
    )?;
    missing.extend(left_out.iter().map(|e| format!("{e}: its row is left out")));
    let started = rounds.first().map_or(0, Vec::len);
    let rows: Vec<Measurement> = (0..started)
        .filter_map(|i| {
            let runs: Vec<Measurement> = rounds.iter().map(|round| round[i].clone()).collect();
            Measurement::combine(&runs)
        })
        .collect();
    let mut details: Vec<String> = rows.iter().map(line).collect();
    details.extend(missing);
    let mut figures = Vec::new();
    for r in &rows {
        let id = id(&r.server);
        figures.extend([
            Figure::new(format!("{id}_requests_per_s"), r.requests_per_s, "req/s"),
            Figure::new(
                format!("{id}_requests_per_cpu_s"),
                r.requests_per_cpu_s,
                "req/CPU-s",
            ),
            Figure::new(
                format!("{id}_answered"),
                r.connections_answered as f64,
                "count",
            ),
            Figure::new(format!("{id}_max_ms"), r.max_us as f64 / 1e3, "ms"),
            Figure::new(
                format!("{id}_pss_bytes"),
                r.server_pss_bytes as f64,
                "bytes",
            ),
        ]);
    }
    let series = |label: &'static str, unit: &'static str, y: fn(&Measurement) -> f64| {
        rows.iter()
            .map(move |r| Series {
                name: r.server.clone(),
                x: Axis {
                    label: "connections",
                    unit: "",
                },
                y: Axis { label, unit },
                points: vec![[r.connections as f64, y(r)]],
            })
            .collect::<Vec<_>>()
    };
    let mut all_series = series("requests per second", "req/s", |r| r.requests_per_s);
    all_series.extend(series("requests per server CPU-second", "req/CPU-s", |r| {
        r.requests_per_cpu_s
    }));
    all_series.extend(series("memory (PSS of the tree)", "MiB", |r| {
        r.server_pss_bytes as f64 / MIB
    }));
    let verdict = judge(&rounds);
    let find = |name: &str| rows.iter().find(|r| r.server == name);
    let mut measured = Vec::new();
    for (e, p) in [("nginx", "apache prefork"), ("event", "prefork")] {
        let (Some(event), Some(prefork)) = (find(e), find(p)) else {
            continue;
        };
        let per_cpu = round_ratio(&rounds, e, p, |r| r.requests_per_cpu_s);
        let per_s = round_ratio(&rounds, e, p, |r| r.requests_per_s);
        figures.push(Figure::new(
            format!("{}_over_{}_per_cpu_s", id(e), id(p)),
            per_cpu,
            "x",
        ));
        measured.push(format!(
            "{e} served {per_cpu:.1}x {p}'s requests per server CPU-second ({per_s:.1}x per \
             second) in {:.2}x its memory",
            ratio(
                event.server_pss_bytes as f64,
                prefork.server_pss_bytes as f64
            )
        ));
    }
    if measured.is_empty() {
        measured.push("prefork or event did not run".into());
    }
    let measured = measured.join("; ");
    Ok(Outcome {
        setup: format!(
            "conlab serve as prefork ({} processes), threadpool ({} threads) and event ({} \
             loops), each in its own process, loaded with {} keep-alive connections for {:.1} s \
             in each of {} alternating rounds (figures: medians)",
            s.prefork,
            s.threads,
            context.cores,
            s.connections,
            s.window.as_secs_f64(),
            s.rounds
        ),
        details,
        measured,
        figures,
        series: all_series,
        verdict,
    })
}

const MIB: f64 = 1024.0 * 1024.0;

/// A server's name as a figure's prefix: `apache_prefork`.
fn id(server: &str) -> String {
    server.replace([' ', '-'], "_")
}

/// The ratios of `figure` between servers `over` and `under`, round by round (rounds where
/// one of them did not run are left out).
fn round_ratios(
    rounds: &[Vec<Measurement>],
    over: &str,
    under: &str,
    figure: fn(&Measurement) -> f64,
) -> Vec<f64> {
    rounds
        .iter()
        .filter_map(|round| {
            let find = |name: &str| round.iter().find(|r| r.server == name);
            Some(ratio(figure(find(over)?), figure(find(under)?)))
        })
        .collect()
}

/// The median of [`round_ratios`] (0 when no round ran both).
fn round_ratio(
    rounds: &[Vec<Measurement>],
    over: &str,
    under: &str,
    figure: fn(&Measurement) -> f64,
) -> f64 {
    conlab_measure::median(&round_ratios(rounds, over, under, figure))
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

fn line(r: &Measurement) -> String {
    format!(
        "{:<14} {:>7.0} req/s, {:>7.0} per CPU-s ({:>3.0}% CPU), {:>3} of {} clients \
         answered, slowest {:.0} ms, PSS {:.1} MiB in {} process(es)",
        r.server,
        r.requests_per_s,
        r.requests_per_cpu_s,
        r.server_cpu_percent,
        r.connections_answered,
        r.connections,
        r.max_us as f64 / 1e3,
        r.server_pss_bytes as f64 / MIB,
        r.processes
    )
}

/// Held when, in every round, the event loop serves at least [`MIN_RATIO`] times prefork's
/// requests per server CPU-second, with no failed response; not held when it stays below the
/// bar in every round; a ratio that straddles the bar from round to round cannot show it.
/// With `--peers`, the lecture's own servers are judged (nginx against Apache's prefork),
/// else conlab's two, which share one HTTP implementation. Memory is reported, not judged:
/// Apache's forked children share their pages, so by PSS its prefork tree is about nginx's
/// size. Servers that used too little CPU to divide by cannot show it.
pub fn judge(rounds: &[Vec<Measurement>]) -> Verdict {
    let Some(first) = rounds.first() else {
        return Verdict::not_held("no round ran");
    };
    let has = |name: &str| first.iter().any(|r| r.server == name);
    let (event_name, prefork_name, compared) = if has("nginx") && has("apache prefork") {
        (
            "nginx",
            "apache prefork",
            "nginx against Apache httpd's prefork MPM",
        )
    } else if has("event") && has("prefork") {
        (
            "event",
            "prefork",
            "conlab's event loop against conlab's prefork, one HTTP implementation under both, \
             so the architecture is the only difference",
        )
    } else {
        return Verdict::not_held("the prefork and event servers did not both run");
    };
    let pair = |round: &[Measurement]| {
        let find = |name: &str| round.iter().find(|r| r.server == name).cloned();
        find(event_name).zip(find(prefork_name))
    };
    let pairs: Vec<(Measurement, Measurement)> = rounds.iter().filter_map(|r| pair(r)).collect();
    if let Some((e, p)) = pairs
        .iter()
        .find(|(e, p)| e.server_cpu_s < MIN_CPU_S || p.server_cpu_s < MIN_CPU_S)
    {
        return Verdict::cannot_show(format!(
            "the servers used {:.0} and {:.0} ms of CPU in a round: too little to compare their \
             cost per request",
            e.server_cpu_s * 1e3,
            p.server_cpu_s * 1e3
        ));
    }
    let failed: u64 = pairs.iter().map(|(e, p)| e.non_2xx + p.non_2xx).sum();
    if failed > 0 {
        return Verdict::not_held(format!("{failed} answers were not 2xx"));
    }
    let ratios = round_ratios(rounds, event_name, prefork_name, |r| r.requests_per_cpu_s);
    let (Some(event), Some(prefork)) = (
        Measurement::combine(&pairs.iter().map(|(e, _)| e.clone()).collect::<Vec<_>>()),
        Measurement::combine(&pairs.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>()),
    ) else {
        return Verdict::not_held("no round ran both servers");
    };
    let by_round: Vec<f64> = ratios.iter().map(|r| (r * 10.0).round() / 10.0).collect();
    let per_cpu = conlab_measure::median(&ratios);
    let memory = ratio(
        event.server_pss_bytes as f64,
        prefork.server_pss_bytes as f64,
    );
    let waiting = (prefork.connections as u64).saturating_sub(prefork.connections_answered);
    let edge = format!(
        "{} served {per_cpu:.1}x the requests of {} per server CPU-second (round by round \
         {by_round:?}; the lecture: about 4x; the bar: {MIN_RATIO}x) in {memory:.2}x its memory, \
         and answered {} of {} clients where {} of {} waited unanswered (a prefork process \
         serves one connection at a time)",
        event.server,
        prefork.server,
        event.connections_answered,
        event.connections,
        waiting,
        prefork.connections
    );
    if ratios.iter().all(|&r| r >= MIN_RATIO) {
        Verdict::held(format!("{compared}: {edge}"))
    } else if ratios.iter().all(|&r| r < MIN_RATIO) {
        // Why, from this run: the kernel's share of each server's CPU.
        let kernel = (event.server_system_share + prefork.server_system_share) / 2.0;
        let why = if kernel >= 0.5 {
            format!(
                ". The kernel's part of the servers' CPU was {:.0}% (event) and {:.0}% \
                 (prefork): its TCP work, the same whatever the design, is most of the cost of \
                 a request for /hello, and the event loop saves only the rest, the process \
                 wake-up and switch of every request",
                event.server_system_share * 100.0,
                prefork.server_system_share * 100.0
            )
        } else {
            String::new()
        };
        Verdict::not_held(format!("{compared}: {edge}{why}"))
    } else {
        Verdict::cannot_show(format!(
            "{compared}: the ratio straddled the bar from round to round, so the machine's \
             drift, not the design, decided it: {edge}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(server: &str, per_cpu: f64, pss_mib: u64, answered: u64) -> Measurement {
        Measurement {
            server: server.into(),
            workers: 2,
            connections: 128,
            connections_answered: answered,
            requests_per_s: per_cpu * 0.8,
            p50_us: 900,
            p99_us: 5_000,
            max_us: 20_000,
            non_2xx: 0,
            errors: 0,
            server_cpu_s: 0.8,
            server_cpu_percent: 80.0,
            requests_per_cpu_s: per_cpu,
            server_system_share: 0.8,
            server_pss_bytes: pss_mib << 20,
            processes: 1,
        }
    }

    #[test]
    fn an_event_loop_four_times_cheaper_per_request_in_less_memory_holds() {
        let rows = [
            row("prefork", 25_000.0, 33, 32),
            row("event", 90_000.0, 9, 128),
        ];
        let verdict = judge(&[rows.to_vec(), rows.to_vec()]);
        assert!(verdict.is_held(), "{verdict:?}");
        assert!(verdict.reason().contains("96 of 128 waited"), "{verdict:?}");
    }

    #[test]
    fn twice_as_cheap_is_not_about_four_times_nor_are_failed_answers() {
        let twice = [
            row("prefork", 45_000.0, 33, 32),
            row("event", 90_000.0, 9, 128),
        ];
        let verdict = judge(&[twice.to_vec()]);
        assert!(matches!(verdict, Verdict::NotHeld { .. }), "{verdict:?}");
        assert!(
            verdict.reason().contains("2.0x the requests"),
            "{verdict:?}"
        );
        let failed = [
            row("prefork", 25_000.0, 9, 32),
            Measurement {
                non_2xx: 3,
                ..row("event", 90_000.0, 33, 128)
            },
        ];
        assert!(judge(&[failed.to_vec()]).reason().contains("not 2xx"));
    }

    #[test]
    fn a_ratio_that_straddles_the_bar_cannot_show_it() {
        let rounds = [
            vec![
                row("prefork", 45_000.0, 33, 32),
                row("event", 90_000.0, 9, 128),
            ],
            vec![
                row("prefork", 25_000.0, 33, 32),
                row("event", 90_000.0, 9, 128),
            ],
        ];
        let verdict = judge(&rounds);
        assert!(matches!(verdict, Verdict::CannotShow { .. }), "{verdict:?}");
        assert!(verdict.reason().contains("[2.0, 3.6]"), "{verdict:?}");
    }

    #[test]
    fn with_the_peers_the_lectures_own_servers_are_judged() {
        let rows = [
            row("prefork", 45_000.0, 33, 32),
            row("event", 90_000.0, 9, 128),
            row("nginx", 70_000.0, 7, 128),
            row("apache prefork", 10_000.0, 25, 32),
        ];
        let verdict = judge(&[rows.to_vec()]);
        assert!(verdict.is_held(), "{verdict:?}");
        assert!(
            verdict.reason().starts_with("nginx against Apache"),
            "{verdict:?}"
        );
    }

    #[test]
    fn idle_servers_cannot_show_it_and_a_missing_row_does_not_hold() {
        let mut idle = [
            row("prefork", 25_000.0, 33, 32),
            row("event", 90_000.0, 9, 128),
        ];
        idle[0].server_cpu_s = 0.01;
        assert!(matches!(
            judge(&[idle.to_vec()]),
            Verdict::CannotShow { .. }
        ));
        assert!(!judge(&[vec![row("event", 90_000.0, 9, 128)]]).is_held());
    }
}
