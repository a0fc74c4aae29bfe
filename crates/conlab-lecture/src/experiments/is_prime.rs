//! `pr.py`: `ProcessPoolExecutor().map(is_prime, PRIMES)`, the lecture's big primes, in a
//! pool of worker processes. Only picklable (here: serialisable) work crosses the boundary.

use std::time::Instant;

use conlab_exec::{Executor, ProcessPool};
use conlab_work::IsPrime;
use conlab_work::primes::LECTURE_PRIMES;

use super::{Context, Experiment};
use crate::Error;
use crate::finding::{Axis, Claim, Figure, Outcome, Series, Verdict};
use crate::machine::LoadLimit;

/// The experiment.
pub const EXPERIMENT: Experiment = Experiment {
    name: "is-prime",
    title: "is_prime with a process pool (ProcessPoolExecutor.map)",
    claim: Claim {
        quote: "ProcessPoolExecutor side-steps the Global Interpreter Lock but also means that \
                only picklable objects can be executed and returned",
        slide: "concurrent.futures (pr.py)",
        figure: "five numbers `is prime: True`, then 1099726899285419 is prime: False",
    },
    load_limit: LoadLimit::Never,
    measure,
};

/// The lecture's output: five primes, then not.
pub const LECTURE_ANSWER: [bool; 6] = [true, true, true, true, true, false];

fn measure(context: &Context<'_>) -> Result<Outcome, Error> {
    let pool = ProcessPool::builder().workers(context.workers).build()?;
    let start = Instant::now();
    let verdicts: Vec<bool> = pool
        .map(LECTURE_PRIMES.map(IsPrime))
        .collect::<Result<_, _>>()?;
    let wall = start.elapsed();
    let details = LECTURE_PRIMES
        .iter()
        .zip(&verdicts)
        .map(|(n, p)| format!("{n} is prime: {}", if *p { "True" } else { "False" }))
        .collect();
    Ok(Outcome {
        setup: format!(
            "the lecture's PRIMES on {} worker processes",
            pool.workers()
        ),
        details,
        measured: format!(
            "{} of 6 as the lecture prints them, in {:.1} ms",
            verdicts
                .iter()
                .zip(LECTURE_ANSWER)
                .filter(|(a, b)| **a == *b)
                .count(),
            wall.as_secs_f64() * 1e3
        ),
        figures: vec![Figure::new("wall_s", wall.as_secs_f64(), "s")],
        series: vec![Series {
            name: "is prime".into(),
            x: Axis {
                label: "index in PRIMES",
                unit: "",
            },
            y: Axis {
                label: "prime (1) or not (0)",
                unit: "",
            },
            points: verdicts
                .iter()
                .enumerate()
                .map(|(i, p)| [i as f64, f64::from(u8::from(*p))])
                .collect(),
        }],
        verdict: judge(&verdicts),
    })
}

/// Held when the pool's answers are the lecture's, in the lecture's order.
pub fn judge(verdicts: &[bool]) -> Verdict {
    if verdicts == LECTURE_ANSWER {
        Verdict::held("the pool's answers, in input order, are the lecture's")
    } else {
        Verdict::not_held(format!(
            "the pool answered {verdicts:?}, the lecture {LECTURE_ANSWER:?}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_lectures_answers_in_order_hold() {
        assert!(judge(&LECTURE_ANSWER).is_held());
        assert!(!judge(&[false, true, true, true, true, true]).is_held());
        assert!(!judge(&[true; 5]).is_held());
    }
}
