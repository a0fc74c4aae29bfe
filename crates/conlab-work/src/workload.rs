//! The built-in workloads, named by spec strings (`primes:600000`, `sleep:10ms`), each a
//! task every model can run, each with a checksum so every model's answer can be checked
//! against serial's.
//!
//! ```text
//! primes:N          sum of the primes <= N, the lecture's trial division    CPU-bound
//! is-prime:N        pr.py's is_prime(N)                                      CPU-bound
//! matmul:N          N x N matrix product, the lecture's triple loop          CPU-bound
//! spin:DURATION     a busy loop calibrated to take DURATION                  CPU-bound
//! sleep:DURATION    time.sleep(DURATION): the kettle                         waiting
//! copy:DIR          copy one of DIR's files to a temp file (task i: file i)  I/O
//! cmd:'LINE'        run LINE with sh -c                                      a process
//! ```
//! DURATION is a number and a unit: `ns`, `us`, `ms`, `s`, `m` (`250us`, `1.5s`).

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use conlab_exec::{RemoteTask, Task, gil};
use serde::{Deserialize, Serialize};

use crate::primes::{is_prime_odd, sum_primes};

/// The grammar, shown with every spec error.
pub const GRAMMAR: &str = "\
workloads: primes:N | is-prime:N | matmul:N | spin:DURATION | sleep:DURATION | copy:DIR | cmd:'LINE'
durations: a number and ns, us, ms, s or m (250us, 10ms, 1.5s)
examples:  primes:600000  sleep:10ms  spin:100us  matmul:120  copy:/var/log  cmd:'gzip -c f >/dev/null'";

/// The largest `primes:N`: the lecture's trial division tests every number up to N, so the
/// work grows as N^1.5 (600000 takes 20 ms here, 100000000 about a minute).
pub const MAX_PRIMES: u64 = 100_000_000;

/// A workload: what one task does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Workload {
    /// `primes:N`.
    Primes {
        /// The bound.
        n: u64,
    },
    /// `is-prime:N`.
    IsPrime {
        /// The number tested.
        n: u64,
    },
    /// `matmul:N`.
    Matmul {
        /// The matrices' side.
        n: usize,
    },
    /// `spin:DURATION`, calibrated once in the parent so that every model and every process
    /// spins the same number of iterations (and so gets the same checksum).
    Spin {
        /// Iterations of the busy loop.
        iterations: u64,
        /// The duration asked for.
        nanos: u64,
    },
    /// `sleep:DURATION`.
    Sleep {
        /// How long each task waits.
        nanos: u64,
    },
    /// `copy:DIR`: task `i` copies file `i % files.len()`.
    Copy {
        /// The directory given.
        dir: PathBuf,
        /// Its regular files, sorted.
        files: Vec<PathBuf>,
    },
    /// `cmd:'LINE'`.
    Cmd {
        /// The shell line.
        line: String,
    },
}

/// A spec string that is not a workload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad workload `{spec}`: {problem}\n{GRAMMAR}")]
pub struct SpecError {
    /// What was given.
    pub spec: String,
    /// What is wrong with it.
    pub problem: String,
}

impl Workload {
    /// Parses a spec string; `spin` is calibrated here, `copy` lists its directory here.
    pub fn parse(spec: &str) -> Result<Workload, SpecError> {
        let err = |problem: String| SpecError {
            spec: spec.to_string(),
            problem,
        };
        let (kind, arg) = spec
            .split_once(':')
            .ok_or_else(|| err("expected KIND:ARGUMENT".into()))?;
        let number = |what: &str| -> Result<u64, SpecError> {
            let digits = arg.trim().replace('_', "");
            digits.parse::<u64>().map_err(|_| {
                err(
                    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                        format!("{what} = {arg} is larger than any number conlab can count to")
                    } else {
                        format!("{what} must be a whole number, not `{arg}`")
                    },
                )
            })
        };
        match kind.trim() {
            "primes" => match number("N")? {
                n if n > MAX_PRIMES => Err(err(format!(
                    "N = {n} is too large (at most {MAX_PRIMES}: trial division up to it takes \
                     about a minute per task already)"
                ))),
                n => Ok(Workload::Primes { n }),
            },
            "is-prime" | "is_prime" => Ok(Workload::IsPrime { n: number("N")? }),
            "matmul" => match number("N")? {
                0 => Err(err("N must be at least 1".into())),
                n if n > 4096 => Err(err(format!("N = {n} is too large (at most 4096)"))),
                n => Ok(Workload::Matmul { n: n as usize }),
            },
            "spin" => {
                let d = parse_duration(arg).map_err(err)?;
                Ok(Workload::Spin {
                    iterations: calibrate_spin(d),
                    nanos: d.as_nanos() as u64,
                })
            }
            "sleep" => Ok(Workload::Sleep {
                nanos: parse_duration(arg).map_err(err)?.as_nanos() as u64,
            }),
            "copy" => {
                let dir = PathBuf::from(arg.trim());
                let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                    .map_err(|e| err(format!("cannot read directory {}: {e}", dir.display())))?
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                    .map(|e| e.path())
                    .collect();
                files.sort();
                if files.is_empty() {
                    return Err(err(format!(
                        "{} has no regular files to copy",
                        dir.display()
                    )));
                }
                Ok(Workload::Copy { dir, files })
            }
            "cmd" => {
                let line = arg
                    .trim()
                    .trim_matches(|c| c == '\'' || c == '"')
                    .to_string();
                if line.is_empty() {
                    return Err(err("the command line is empty".into()));
                }
                Ok(Workload::Cmd { line })
            }
            other => Err(err(format!("unknown workload kind `{other}`"))),
        }
    }

    /// The kind's name: `primes`, `sleep`, ...
    pub fn kind(&self) -> &'static str {
        match self {
            Workload::Primes { .. } => "primes",
            Workload::IsPrime { .. } => "is-prime",
            Workload::Matmul { .. } => "matmul",
            Workload::Spin { .. } => "spin",
            Workload::Sleep { .. } => "sleep",
            Workload::Copy { .. } => "copy",
            Workload::Cmd { .. } => "cmd",
        }
    }

    /// Runs task `index` on this thread and returns its checksum.
    pub fn run(&self, index: u64) -> Result<u64, String> {
        match self {
            Workload::Primes { n } => Ok(sum_primes(*n)),
            Workload::IsPrime { n } => Ok(u64::from(is_prime_odd(*n))),
            Workload::Matmul { n } => Ok(matmul(*n)),
            Workload::Spin { iterations, .. } => Ok(spin(*iterations)),
            Workload::Sleep { nanos } => {
                gil::sleep(Duration::from_nanos(*nanos));
                Ok(*nanos)
            }
            Workload::Copy { files, .. } => {
                let (from, to) = copy_paths(files, index);
                let copied = gil::allow_threads(|| std::fs::copy(from, &to));
                let _ = std::fs::remove_file(&to);
                copied.map_err(|e| format!("copying {}: {e}", from.display()))
            }
            Workload::Cmd { line } => {
                let out = gil::allow_threads(|| {
                    let mut sh = std::process::Command::new("sh");
                    // The task's command ends with the task's worker, not after it.
                    conlab_exec::die_with_parent(&mut sh, libc::SIGKILL);
                    sh.arg("-c")
                        .arg(line)
                        .stdin(std::process::Stdio::null())
                        .output()
                });
                command_checksum(line, out.map(|o| (o.status, o.stderr)))
            }
        }
    }

    /// Runs task `index` as a future: waits (`sleep`, `copy`, `cmd`) yield to the event loop;
    /// CPU work runs inline and blocks it, which is the lecture's point about asyncio.
    pub async fn run_async(&self, index: u64) -> Result<u64, String> {
        match self {
            Workload::Sleep { nanos } => {
                tokio::time::sleep(Duration::from_nanos(*nanos)).await;
                Ok(*nanos)
            }
            Workload::Copy { files, .. } => {
                let (from, to) = copy_paths(files, index);
                let copied = tokio::fs::copy(from, &to).await;
                let _ = tokio::fs::remove_file(&to).await;
                copied.map_err(|e| format!("copying {}: {e}", from.display()))
            }
            Workload::Cmd { line } => {
                let mut sh = tokio::process::Command::new("sh");
                // Spawned from the event loop's thread, which lives as long as the pool.
                conlab_exec::die_with_parent(sh.as_std_mut(), libc::SIGKILL);
                let out = sh
                    .arg("-c")
                    .arg(line)
                    .stdin(std::process::Stdio::null())
                    .output()
                    .await;
                command_checksum(line, out.map(|o| (o.status, o.stderr)))
            }
            cpu => cpu.run(index),
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Workload::Primes { n } => write!(f, "primes:{n}"),
            Workload::IsPrime { n } => write!(f, "is-prime:{n}"),
            Workload::Matmul { n } => write!(f, "matmul:{n}"),
            Workload::Spin { nanos, .. } => write!(f, "spin:{:?}", Duration::from_nanos(*nanos)),
            Workload::Sleep { nanos } => write!(f, "sleep:{:?}", Duration::from_nanos(*nanos)),
            Workload::Copy { dir, .. } => write!(f, "copy:{}", dir.display()),
            Workload::Cmd { line } => write!(f, "cmd:'{line}'"),
        }
    }
}

fn copy_paths(files: &[PathBuf], index: u64) -> (&PathBuf, PathBuf) {
    let from = &files[(index as usize) % files.len()];
    let to = std::env::temp_dir().join(format!("conlab-copy-{}-{index}", std::process::id()));
    (from, to)
}

fn command_checksum(
    line: &str,
    out: std::io::Result<(std::process::ExitStatus, Vec<u8>)>,
) -> Result<u64, String> {
    match out {
        Ok((status, _)) if status.success() => Ok(0),
        Ok((status, stderr)) => {
            let last = String::from_utf8_lossy(&stderr);
            let last = last.lines().last().unwrap_or("").trim().to_string();
            Err(format!(
                "`{line}` failed ({status}){}",
                if last.is_empty() {
                    String::new()
                } else {
                    format!(": {last}")
                }
            ))
        }
        Err(e) => Err(format!("could not run `sh -c {line}`: {e}")),
    }
}

/// Parses `250us`, `10ms`, `1.5s`, `2m`, `800ns`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let form = "write a number and a unit: 10ms, 250us, 1.5s";
    if text.starts_with('-') {
        return Err(format!("`{text}` is negative: a duration is 0 or more"));
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("`{text}` has no unit: {form}"))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration: {form}"))?;
    let seconds = match unit.trim() {
        "ns" => value / 1e9,
        "us" | "µs" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        "m" | "min" => value * 60.0,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}`: use ns, us, ms, s or m"
            ));
        }
    };
    if !seconds.is_finite() || seconds > 24.0 * 3600.0 {
        return Err(format!("`{text}` is longer than a day"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// The busy loop: an LCG step per iteration, so the compiler cannot skip it and the result
/// is a checksum of the iteration count.
fn spin(iterations: u64) -> u64 {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut done = 0;
    while done < iterations {
        let chunk = (iterations - done).min(4096);
        for _ in 0..chunk {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
        }
        done += chunk;
        gil::checkpoint();
    }
    std::hint::black_box(x)
}

/// Iterations of [`spin`] that take `duration` on this machine (measured over ~20 ms).
fn calibrate_spin(duration: Duration) -> u64 {
    let mut iterations = 1 << 16;
    loop {
        let start = Instant::now();
        std::hint::black_box(spin(iterations));
        let took = start.elapsed();
        if took >= Duration::from_millis(20) || iterations >= 1 << 40 {
            let per_ns = iterations as f64 / took.as_nanos().max(1) as f64;
            return ((duration.as_nanos() as f64 * per_ns) as u64).max(1);
        }
        iterations *= 4;
    }
}

/// The lecture's `matrix_product`, C = A x B with the triple loop, on deterministic inputs;
/// the checksum is the bits of the sum of C (same code, same order, same bits everywhere).
fn matmul(n: usize) -> u64 {
    let a: Vec<f64> = (0..n * n)
        .map(|i| ((i * 7 + 3) % 11) as f64 / 11.0)
        .collect();
    let b: Vec<f64> = (0..n * n)
        .map(|i| ((i * 5 + 1) % 13) as f64 / 13.0)
        .collect();
    let mut c = vec![0.0f64; n * n];
    for i in 0..n {
        for j in 0..n {
            let mut acc = 0.0;
            for k in 0..n {
                acc += a[i * n + k] * b[k * n + j];
            }
            c[i * n + j] = acc;
        }
        gil::checkpoint();
    }
    c.iter().sum::<f64>().to_bits()
}

/// One task of a workload: what the pools run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    /// The workload.
    pub workload: Workload,
    /// The task's index in its batch (0-based).
    pub index: u64,
}

/// What a task returns: its checksum and how long the work itself took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    /// The workload's checksum for this task.
    pub checksum: u64,
    /// Service time: from the task's start to its end, in nanoseconds.
    pub service_ns: u64,
}

impl Job {
    /// Runs the task on this thread, timing it.
    pub fn run_timed(&self) -> Result<Done, String> {
        let start = Instant::now();
        let checksum = self.workload.run(self.index)?;
        Ok(Done {
            checksum,
            service_ns: start.elapsed().as_nanos() as u64,
        })
    }

    /// Runs the task as a future, timing it.
    pub async fn run_timed_async(&self) -> Result<Done, String> {
        let start = Instant::now();
        let checksum = self.workload.run_async(self.index).await?;
        Ok(Done {
            checksum,
            service_ns: start.elapsed().as_nanos() as u64,
        })
    }
}

impl Task for Job {
    type Output = Result<Done, String>;
    fn run(self) -> Self::Output {
        self.run_timed()
    }
}

impl RemoteTask for Job {
    const NAME: &'static str = "conlab.workload";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_to_workloads() {
        assert_eq!(
            Workload::parse("primes:600000"),
            Ok(Workload::Primes { n: 600_000 })
        );
        assert_eq!(
            Workload::parse("primes:600_000"),
            Ok(Workload::Primes { n: 600_000 })
        );
        assert_eq!(
            Workload::parse("is-prime:97"),
            Ok(Workload::IsPrime { n: 97 })
        );
        assert_eq!(Workload::parse("matmul:64"), Ok(Workload::Matmul { n: 64 }));
        assert_eq!(
            Workload::parse("sleep:10ms"),
            Ok(Workload::Sleep { nanos: 10_000_000 })
        );
        assert_eq!(
            Workload::parse("cmd:'echo hi'"),
            Ok(Workload::Cmd {
                line: "echo hi".into()
            })
        );
        assert!(matches!(
            Workload::parse("spin:100us"),
            Ok(Workload::Spin { nanos: 100_000, .. })
        ));
    }

    #[test]
    fn bad_specs_say_what_is_wrong_and_show_the_grammar() {
        for (spec, problem) in [
            ("primes", "expected KIND:ARGUMENT"),
            ("primes:lots", "must be a whole number"),
            ("primes:100000001", "too large (at most 100000000"),
            ("primes:18446744073709551616", "larger than any number"),
            ("sleep:10", "has no unit"),
            ("sleep:10 fortnights", "unknown unit"),
            ("fib:30", "unknown workload kind `fib`"),
            ("matmul:0", "at least 1"),
            ("copy:/nonexistent/dir", "cannot read directory"),
            ("cmd:''", "empty"),
        ] {
            let e = Workload::parse(spec).unwrap_err();
            let text = e.to_string();
            assert!(text.contains(problem), "{spec}: {text}");
            assert!(
                text.contains("examples:  primes:600000"),
                "{spec}: grammar missing"
            );
        }
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("3d").is_err());
        assert!(parse_duration("99999999m").is_err());
        // Every error names the value it could not read.
        for (bad, says) in [
            ("abc", "`abc` is not a duration"),
            ("-1s", "`-1s` is negative"),
            ("1.2.3s", "`1.2.3s` is not a duration"),
            ("10", "`10` has no unit"),
            (
                "5 fortnights",
                "unknown unit `fortnights` in `5 fortnights`",
            ),
        ] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn checksums_are_deterministic() {
        for spec in ["primes:1000", "is-prime:97", "matmul:20", "sleep:1ms"] {
            let w = Workload::parse(spec).unwrap();
            assert_eq!(w.run(0), w.run(1), "{spec}");
        }
        assert_eq!(Workload::parse("primes:1000").unwrap().run(0), Ok(76_127));
        let spin = Workload::Spin {
            iterations: 10_000,
            nanos: 1,
        };
        assert_eq!(spin.run(0), spin.run(5));
    }

    #[test]
    fn a_failing_command_is_the_tasks_error() {
        let w = Workload::parse("cmd:'echo oops >&2; exit 3'").unwrap();
        let e = w.run(0).unwrap_err();
        assert!(e.contains("exit status: 3") && e.contains("oops"), "{e}");
        assert_eq!(Workload::parse("cmd:true").unwrap().run(0), Ok(0));
    }

    #[test]
    fn copy_copies_file_index_modulo_count() {
        let dir = std::env::temp_dir().join(format!("conlab-copy-src-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a"), b"12345").unwrap();
        std::fs::write(dir.join("b"), b"1234567").unwrap();
        let w = Workload::parse(&format!("copy:{}", dir.display())).unwrap();
        assert_eq!((w.run(0), w.run(1), w.run(2)), (Ok(5), Ok(7), Ok(5)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
