//! The pipeline's guarantees, under random stage delays and worker counts: every item leaves
//! exactly once, in order when ordered; an error stops upstream and drains downstream; a
//! panic is its item's error; queues stay within their bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use conlab_pipeline::{Cancel, Model, Pipeline, Stage};
use proptest::prelude::*;

fn delay_stage(name: &str, workers: usize, max_us: u64) -> Stage<u64> {
    Stage::func(name, workers, move |seq, item: u64| {
        // A delay that varies per item, so workers overtake each other.
        let us = (seq.wrapping_mul(2_654_435_761) >> 7) % (max_us + 1);
        std::thread::sleep(Duration::from_micros(us));
        Ok(item + 1)
    })
}

fn run(p: &Pipeline<u64>, items: u64, model: Model) -> (Vec<(u64, u64)>, conlab_pipeline::Report) {
    let mut out = Vec::new();
    let report = p
        .run(0..items, model, &Cancel::default(), |seq, v| {
            out.push((seq, v))
        })
        .unwrap();
    (out, report)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn every_item_leaves_exactly_once_and_in_order_when_ordered(
        workers in proptest::collection::vec(1usize..4, 1..4),
        delays in proptest::collection::vec(0u64..300, 4),
        items in 0u64..120,
        batch in 1usize..5,
        queue in 1usize..9,
        ordered in any::<bool>(),
        use_async in any::<bool>(),
    ) {
        let stages = workers
            .iter()
            .enumerate()
            .map(|(i, &w)| delay_stage(&format!("s{i}"), w, delays[i]))
            .collect();
        let p = Pipeline::new(stages).batch(batch).queue(queue).ordered(ordered);
        let model = if use_async { Model::Async } else { Model::Threads };
        let (out, report) = run(&p, items, model);
        let n = workers.len() as u64;
        let mut seen: Vec<u64> = out.iter().map(|&(seq, _)| seq).collect();
        if ordered {
            prop_assert_eq!(&seen, &(0..items).collect::<Vec<_>>());
        }
        seen.sort_unstable();
        prop_assert_eq!(seen, (0..items).collect::<Vec<_>>());
        for &(seq, v) in &out {
            prop_assert_eq!(v, seq + n, "every stage saw item {} once", seq);
        }
        prop_assert_eq!(report.items_out, items);
        for s in &report.stages {
            prop_assert_eq!(s.items, items);
        }
    }
}

#[test]
fn an_error_in_a_middle_stage_stops_upstream_and_drains_downstream() {
    for model in [Model::Threads, Model::Async] {
        let upstream = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&upstream);
        let p = Pipeline::new(vec![
            Stage::func("first", 1, move |_, v: u64| {
                counted.fetch_add(1, Ordering::SeqCst);
                Ok(v)
            }),
            Stage::func("middle", 1, |seq, v| {
                if seq == 50 {
                    Err("bad item".to_string())
                } else {
                    Ok(v)
                }
            }),
            Stage::func("last", 1, |_, v| {
                std::thread::sleep(Duration::from_micros(200));
                Ok(v)
            }),
        ])
        .queue(4);
        let mut out = Vec::new();
        let report = p
            .run(0..100_000, model, &Cancel::default(), |seq, _| {
                out.push(seq)
            })
            .unwrap();
        let failure = report.failure.clone().expect("the error is reported");
        assert_eq!((failure.stage.as_str(), failure.item), ("middle", 50));
        assert_eq!(failure.message, "bad item");
        // Upstream stopped: it did not read the whole input.
        assert!(upstream.load(Ordering::SeqCst) < 1_000, "{model:?}");
        // Downstream drained: everything before the bad item that passed it came out.
        for seq in 0..50 {
            assert!(out.contains(&seq), "{model:?}: item {seq} was lost");
        }
        assert!(!out.contains(&50));
    }
}

#[test]
fn a_panic_is_its_items_error() {
    let p = Pipeline::new(vec![Stage::func("boom", 2, |seq, v: u64| {
        if seq == 7 {
            panic!("gopher dropped the cart");
        }
        Ok(v)
    })]);
    let report = p
        .run(0..20, Model::Threads, &Cancel::default(), |_, _| {})
        .unwrap();
    let failure = report.failure.expect("a failure");
    assert_eq!(failure.item, 7);
    assert!(
        failure.message.contains("gopher dropped the cart"),
        "{}",
        failure.message
    );
}

#[test]
fn a_slow_last_stage_never_lets_a_queue_grow_past_its_bound() {
    let p = Pipeline::new(vec![
        Stage::func("fast", 2, |_, v: u64| Ok(v)),
        Stage::func("slow", 1, |_, v| {
            std::thread::sleep(Duration::from_micros(300));
            Ok(v)
        }),
    ])
    .queue(8)
    .batch(2);
    let (out, report) = run(&p, 400, Model::Threads);
    assert_eq!(out.len(), 400);
    let slow = &report.stages[1];
    // One batch per consumer may be counted while it is being taken.
    assert!(
        slow.queue_max <= slow.queue_capacity + 2,
        "queue before the slow stage reached {} of {}",
        slow.queue_max,
        slow.queue_capacity
    );
    assert!(
        slow.queue_max >= slow.queue_capacity / 2,
        "the queue did fill: {}",
        slow.queue_max
    );
    assert_eq!(
        report.bottleneck.as_ref().map(|b| b.stage.as_str()),
        Some("slow")
    );
}

#[test]
fn cancelling_stops_the_source_and_keeps_what_is_inside() {
    let cancel = Cancel::default();
    let stop = cancel.clone();
    let p = Pipeline::new(vec![Stage::func("s", 1, move |seq, v: u64| {
        if seq == 10 {
            stop.cancel();
        }
        Ok(v)
    })])
    .ordered(true);
    let mut out = Vec::new();
    let report = p
        .run(0..1_000_000, Model::Threads, &cancel, |seq, _| {
            out.push(seq)
        })
        .unwrap();
    assert!(report.cancelled);
    assert!(out.len() < 1_000, "{}", out.len());
    assert_eq!(
        out,
        (0..out.len() as u64).collect::<Vec<_>>(),
        "in order, nothing lost"
    );
}

#[test]
fn one_core_still_gives_a_correct_result() {
    let p = Pipeline::new(vec![delay_stage("a", 3, 50), delay_stage("b", 3, 50)]).ordered(true);
    let (out, report) =
        conlab_pipeline::cores::with_cores(1, || run(&p, 200, Model::Threads)).unwrap();
    assert_eq!(report.cores, 1);
    assert_eq!(
        out.iter().map(|x| x.0).collect::<Vec<_>>(),
        (0..200).collect::<Vec<_>>()
    );
}

#[test]
fn stage_threads_sleep_with_the_least_timer_slack() {
    // Each stage reports the timer slack of the thread it runs on: 1 ns under both models,
    // where the process default is 50 us.
    // SAFETY: PR_GET_TIMERSLACK takes no further argument and returns this thread's slack.
    let slack = || unsafe { libc::prctl(libc::PR_GET_TIMERSLACK) } as u64;
    for model in [Model::Threads, Model::Async] {
        let p = Pipeline::new(vec![Stage::func("read", 2, move |_, _: u64| Ok(slack()))]);
        let (out, _) = run(&p, 8, model);
        assert_eq!(out.len(), 8);
        assert!(out.iter().all(|&(_, s)| s == 1), "{model:?}: {out:?}");
    }
    assert_ne!(slack(), 1, "the test's own thread keeps the default");
}
