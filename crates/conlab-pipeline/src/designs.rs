//! The lecture's gopher designs, by name, each built from one time unit (the time of one
//! procedure: load, move, unload or return) and one kind of work (a sleep, like waiting on a
//! cart; or a spin, CPU work), with what the lecture says of it and the throughput queueing
//! theory gives it. One cart's round trip is four units in every design: only the
//! arrangement changes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use conlab_work::Workload;

use crate::stage::Stage;

/// Sleep (the gophers wait, as on I/O) or spin (they compute: cores limit them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effort {
    /// `sleep:UNIT` per procedure.
    Sleep,
    /// `spin:UNIT` per procedure.
    Spin,
}

/// One of the lecture's designs.
#[derive(Debug, Clone, Copy)]
pub struct Design {
    /// Its name for `--design`.
    pub name: &'static str,
    /// The lecture's words for it.
    pub quote: &'static str,
    /// The speedup over one gopher the lecture's argument gives it, with enough cores (or
    /// with sleeping gophers).
    pub expected_speedup: f64,
    /// Stages as (name, workers, units of work); shared resources are described by `shared`.
    stages: &'static [(&'static str, usize, u32)],
    /// What the gophers share: none, one cart, or the pile and the incinerator.
    shared: Shared,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shared {
    Nothing,
    /// Every trip needs the one cart.
    OneCart,
    /// Loading needs the pile, unloading the incinerator (one gopher at a time each).
    PileAndIncinerator,
}

/// Every design, in the lecture's order.
pub const DESIGNS: &[Design] = &[
    Design {
        name: "one-gopher",
        quote: "With only one gopher this will take too long.",
        expected_speedup: 1.0,
        stages: &[("gopher", 1, 4)],
        shared: Shared::Nothing,
    },
    Design {
        name: "more-gophers",
        quote: "More gophers are not enough; they need more carts.",
        expected_speedup: 1.0,
        stages: &[("gopher", 2, 4)],
        shared: Shared::OneCart,
    },
    Design {
        name: "more-carts",
        quote: "This will go faster, but there will be bottlenecks at the pile and incinerator.",
        expected_speedup: 2.0,
        stages: &[("gopher", 2, 4)],
        shared: Shared::PileAndIncinerator,
    },
    Design {
        name: "double-everything",
        quote: "Remove the bottleneck; make them really independent. This will consume input \
                twice as fast.",
        expected_speedup: 2.0,
        stages: &[("gopher", 2, 4)],
        shared: Shared::Nothing,
    },
    Design {
        name: "three-gophers",
        quote: "Three gophers in action, but with likely delays.",
        expected_speedup: 2.0,
        stages: &[("load", 1, 1), ("move", 1, 2), ("unload", 1, 1)],
        shared: Shared::Nothing,
    },
    Design {
        name: "four-procedures",
        quote: "Four gophers in action for better flow, each doing one simple task. [...] \
                that's four times faster than our original one-gopher design.",
        expected_speedup: 4.0,
        stages: &[
            ("load", 1, 1),
            ("move", 1, 1),
            ("unload", 1, 1),
            ("return", 1, 1),
        ],
        shared: Shared::Nothing,
    },
    Design {
        name: "eight-gophers",
        quote: "We can now parallelize on the other axis; the concurrent design makes it easy. \
                Eight gophers, all busy.",
        expected_speedup: 8.0,
        stages: &[
            ("load", 2, 1),
            ("move", 2, 1),
            ("unload", 2, 1),
            ("return", 2, 1),
        ],
        shared: Shared::Nothing,
    },
    Design {
        name: "staging-pile",
        quote: "Two gopher procedures, plus a staging pile.",
        expected_speedup: 2.0,
        stages: &[("to-pile", 1, 2), ("to-fire", 1, 2)],
        shared: Shared::Nothing,
    },
    Design {
        name: "staging-parallel",
        quote: "Run more concurrent procedures to get more throughput.",
        expected_speedup: 4.0,
        stages: &[("to-pile", 2, 2), ("to-fire", 2, 2)],
        shared: Shared::Nothing,
    },
    Design {
        name: "sixteen-gophers",
        quote: "Use all our techniques. Sixteen gophers hard at work!",
        expected_speedup: 16.0,
        stages: &[
            ("load", 4, 1),
            ("move", 4, 1),
            ("unload", 4, 1),
            ("return", 4, 1),
        ],
        shared: Shared::Nothing,
    },
];

/// The design of this name.
pub fn find(name: &str) -> Option<&'static Design> {
    DESIGNS.iter().find(|d| d.name == name)
}

/// The names, for error messages.
pub fn names() -> String {
    DESIGNS
        .iter()
        .map(|d| d.name)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Design {
    /// The stages, with procedures of `unit` each.
    pub fn stages(&self, unit: Duration, effort: Effort) -> Vec<Stage<()>> {
        let work = |units: u32| {
            let d = unit * units;
            let spec = match effort {
                Effort::Sleep => format!("sleep:{}us", d.as_micros()),
                Effort::Spin => format!("spin:{}us", d.as_micros()),
            };
            Workload::parse(&spec).expect("a valid sleep or spin")
        };
        let one = work(1);
        let cart = Arc::new(Mutex::new(()));
        let pile = Arc::new(Mutex::new(()));
        let fire = Arc::new(Mutex::new(()));
        self.stages
            .iter()
            .map(|&(name, workers, units)| match self.shared {
                Shared::Nothing => Stage::workload(name, workers, work(units)),
                Shared::OneCart => {
                    let (cart, trip) = (Arc::clone(&cart), work(units));
                    Stage::func(name, workers, move |seq, ()| {
                        let _cart = cart.lock().unwrap_or_else(|e| e.into_inner());
                        trip.run(seq).map(|_| ())
                    })
                }
                Shared::PileAndIncinerator => {
                    let (pile, fire, one) = (Arc::clone(&pile), Arc::clone(&fire), one.clone());
                    Stage::func(name, workers, move |seq, ()| {
                        {
                            let _pile = pile.lock().unwrap_or_else(|e| e.into_inner());
                            one.run(seq)?; // load
                        }
                        one.run(seq)?; // move
                        {
                            let _fire = fire.lock().unwrap_or_else(|e| e.into_inner());
                            one.run(seq)?; // unload
                        }
                        one.run(seq).map(|_| ()) // return
                    })
                }
            })
            .collect()
    }

    /// Items per second queueing theory gives: the slowest stage's workers / its time, and
    /// for spinning gophers at most `cores` units of CPU at once; one cart allows one trip at
    /// a time.
    pub fn theory_per_s(&self, unit: Duration, effort: Effort, cores: usize) -> f64 {
        let u = unit.as_secs_f64();
        let mut rate = self
            .stages
            .iter()
            .map(|&(_, workers, units)| workers as f64 / (f64::from(units) * u))
            .fold(f64::INFINITY, f64::min);
        if self.shared == Shared::OneCart {
            rate = rate.min(1.0 / (4.0 * u));
        }
        if effort == Effort::Spin {
            let per_item: f64 = self
                .stages
                .iter()
                .map(|&(_, _, units)| f64::from(units) * u)
                .sum();
            let workers: usize = self.stages.iter().map(|s| s.1).sum();
            rate = rate.min(cores.min(workers) as f64 / per_item);
        }
        rate
    }

    /// Items per second a run of `items` items can show: the steady state of
    /// [`Design::theory_per_s`] less the pipeline's fill, since the first item leaves only
    /// after every stage's time (`items / ((items - 1) / rate + one trip)`).
    pub fn theory_for(&self, items: u64, unit: Duration, effort: Effort, cores: usize) -> f64 {
        let rate = self.theory_per_s(unit, effort, cores);
        let trip: f64 = self
            .stages
            .iter()
            .map(|&(_, _, units)| f64::from(units) * unit.as_secs_f64())
            .sum();
        let items = items.max(1) as f64;
        items / ((items - 1.0) / rate + trip)
    }

    /// Gophers in the design.
    pub fn gophers(&self) -> usize {
        self.stages.iter().map(|s| s.1).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schemas_are_documented() {
        let doc = include_str!("../../../docs/json-schema.md");
        for schema in [COMPARE_SCHEMA, crate::report::SCHEMA] {
            assert!(doc.contains(&format!("## `{schema}`")), "{schema}");
        }
    }

    #[test]
    fn every_design_moves_four_units_a_trip_and_theory_follows_the_slowest_stage() {
        let u = Duration::from_millis(1);
        for d in DESIGNS {
            let units: u32 = d.stages.iter().map(|s| s.2).sum();
            assert_eq!(units, 4, "{}", d.name);
            let theory = d.theory_per_s(u, Effort::Sleep, 64)
                / DESIGNS[0].theory_per_s(u, Effort::Sleep, 64);
            assert!(
                (theory - d.expected_speedup).abs() < 1e-9,
                "{}: {theory}",
                d.name
            );
        }
        // On two cores spinning gophers cannot beat 2x, however many there are.
        let sixteen = find("sixteen-gophers").unwrap();
        assert!((sixteen.theory_per_s(u, Effort::Spin, 2) * 4e-3 - 2.0).abs() < 1e-9);
        assert_eq!(sixteen.gophers(), 16);
        // A run of one item is one trip; a long run approaches the steady state.
        let four = find("four-procedures").unwrap();
        assert!((four.theory_for(1, u, Effort::Sleep, 2) - 250.0).abs() < 1e-6);
        let long = four.theory_for(1_000_000, u, Effort::Sleep, 2);
        assert!((long / four.theory_per_s(u, Effort::Sleep, 2) - 1.0).abs() < 1e-3);
    }

    #[test]
    fn compare_runs_one_gopher_first_and_takes_its_unit_for_the_theory_here() {
        let (four, one) = (find("four-procedures").unwrap(), &DESIGNS[0]);
        let unit = Duration::from_micros(300);
        let report = compare(
            &[four, one],
            unit,
            Effort::Sleep,
            12,
            crate::Model::Threads,
            4,
        )
        .unwrap();
        let names: Vec<_> = report.designs.iter().map(|d| d.design.as_str()).collect();
        assert_eq!(names, ["one-gopher", "four-procedures"]);
        // A sleep never wakes early, so the unit here is at least the one asked for, and
        // the theory with it at most the theory asked for.
        assert!(report.unit_here_ms >= 0.3, "{}", report.unit_here_ms);
        let here = Duration::from_secs_f64(report.unit_here_ms / 1e3);
        for d in &report.designs {
            let design = find(&d.design).unwrap();
            let expected = design.theory_for(12, here, Effort::Sleep, report.cores);
            assert!(
                (d.theory_here_per_s / expected - 1.0).abs() < 1e-6,
                "{}",
                d.design
            );
            assert!(d.theory_here_per_s <= d.theory_per_s);
        }
        assert_eq!(report.designs[0].speedup, 1.0);
    }
}

/// The schema id of [`CompareReport`]'s JSON.
pub const COMPARE_SCHEMA: &str = "conlab.pipeline-compare/1";

/// One design measured beside the others.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DesignResult {
    /// The design's name.
    pub design: String,
    /// Its gophers.
    pub gophers: usize,
    /// Items per second measured.
    pub throughput_per_s: f64,
    /// Items per second queueing theory gives a run of this many items here (cores, work
    /// kind, and the pipeline's fill at the start), with procedures of the unit asked for.
    pub theory_per_s: f64,
    /// The same theory with procedures of the unit this machine delivers: one gopher's
    /// measured procedure time in this run ([`CompareReport::unit_here_ms`]), so that what
    /// remains of the gap is the pipeline's own cost, not the sleeps' overshoot.
    pub theory_here_per_s: f64,
    /// Measured over one gopher's measured throughput.
    pub speedup: f64,
    /// The speedup the lecture's argument gives it.
    pub expected_speedup: f64,
    /// One cart's round trip as measured: each stage's busy time per item, summed, in
    /// milliseconds (4 units asked for; more when sleeps overshoot or gophers wait for a
    /// shared cart, pile or core).
    pub trip_ms: f64,
    /// Median and 99th percentile item latency, in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// The bottleneck stage and its evidence.
    pub bottleneck: Option<String>,
    /// The lecture's words.
    pub quote: String,
}

/// Every design run side by side (`conlab pipeline --compare`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CompareReport {
    /// [`COMPARE_SCHEMA`].
    pub schema: String,
    /// The time of one procedure, in milliseconds.
    pub unit_ms: f64,
    /// One procedure as one gopher measured it in this run (its busy time per item over
    /// four), in milliseconds: the unit plus what the sleeps overshoot here.
    pub unit_here_ms: f64,
    /// `sleep` or `spin`.
    pub effort: String,
    /// Items per design.
    pub items: u64,
    /// `threads` or `async`.
    pub model: String,
    /// Cores allowed.
    pub cores: usize,
    /// One row per design.
    pub designs: Vec<DesignResult>,
}

/// Runs each design of `which` with `items` items and puts them side by side.
pub fn compare(
    which: &[&Design],
    unit: Duration,
    effort: Effort,
    items: u64,
    model: crate::Model,
    queue: usize,
) -> Result<CompareReport, crate::PipelineError> {
    let cores = crate::cores::allowed();
    let mut designs = Vec::new();
    let mut one_gopher: Option<(f64, Duration)> = None;
    // Speedups are over one gopher measured in the same run, and its procedure time is the
    // unit of the theory here: it runs first.
    let mut rows: Vec<&Design> = which
        .iter()
        .copied()
        .filter(|d| d.name != DESIGNS[0].name)
        .collect();
    rows.insert(0, &DESIGNS[0]);
    for design in rows {
        let pipeline = crate::Pipeline::new(design.stages(unit, effort)).queue(queue);
        let report = pipeline.run(
            std::iter::repeat_n((), items as usize),
            model,
            &crate::Cancel::default(),
            |_, ()| {},
        )?;
        let trip_ms: f64 = report
            .stages
            .iter()
            .map(|s| s.busy_s * 1e3 / s.items.max(1) as f64)
            .sum();
        let (base, unit_here) = *one_gopher.get_or_insert_with(|| {
            // One gopher's trip is four procedures, with nothing shared and nothing to
            // wait for; a run it could not finish keeps the unit asked for.
            let here = Duration::from_secs_f64(trip_ms / 4e3);
            (
                report.throughput_per_s,
                if here.is_zero() { unit } else { here },
            )
        });
        designs.push(DesignResult {
            design: design.name.into(),
            gophers: design.gophers(),
            throughput_per_s: report.throughput_per_s,
            theory_per_s: design.theory_for(items, unit, effort, cores),
            theory_here_per_s: design.theory_for(items, unit_here, effort, cores),
            speedup: report.throughput_per_s / base.max(f64::MIN_POSITIVE),
            expected_speedup: design.expected_speedup,
            trip_ms,
            p50_ms: report.latency.p50_ms,
            p99_ms: report.latency.p99_ms,
            bottleneck: report.bottleneck.map(|b| b.stage),
            quote: design.quote.into(),
        });
    }
    Ok(CompareReport {
        schema: COMPARE_SCHEMA.into(),
        unit_ms: unit.as_secs_f64() * 1e3,
        unit_here_ms: one_gopher.map_or(0.0, |(_, here)| here.as_secs_f64() * 1e3),
        effort: match effort {
            Effort::Sleep => "sleep",
            Effort::Spin => "spin",
        }
        .into(),
        items,
        model: model.name().into(),
        cores,
        designs,
    })
}

/// `measured` as a percentage of `theory`.
fn share(measured: f64, theory: f64) -> conlab_measure::report::Cell {
    let ratio = measured / theory;
    conlab_measure::report::Cell::number(ratio, format!("{:.0}%", 100.0 * ratio))
}

impl conlab_measure::export::Tabular for CompareReport {
    fn tables(&self) -> Vec<conlab_measure::report::Table> {
        use conlab_measure::report::{self as cells, Cell, Column, Table};
        let rows = self
            .designs
            .iter()
            .map(|d| {
                vec![
                    Cell::text(d.design.clone()),
                    cells::count(d.gophers as u64),
                    cells::rate(d.throughput_per_s),
                    share(d.throughput_per_s, d.theory_per_s),
                    share(d.throughput_per_s, d.theory_here_per_s),
                    Cell::number(d.speedup, format!("{:.2}x", d.speedup)),
                    Cell::number(d.expected_speedup, format!("{:.0}x", d.expected_speedup)),
                    cells::seconds(d.trip_ms / 1e3),
                    cells::seconds(d.p99_ms / 1e3),
                    Cell::text(d.bottleneck.clone().unwrap_or_default()),
                ]
            })
            .collect();
        vec![Table {
            title: Some(format!(
                "The gophers' designs: {} items each, procedures of {} ms ({}; {:.3} ms as one \
                 gopher measured them), {} model, {} cores",
                self.items, self.unit_ms, self.effort, self.unit_here_ms, self.model, self.cores
            )),
            columns: vec![
                Column::text("design"),
                Column::number("gophers"),
                Column::number("items_per_s"),
                Column::number("of_theory"),
                Column::number("of_theory_here"),
                Column::number("speedup"),
                Column::number("lecture"),
                Column::number("trip_s"),
                Column::number("p99_s"),
                Column::text("bottleneck"),
            ],
            rows,
            notes: vec![
                "speedup: over one gopher, measured in this run; lecture: what the lecture's \
                 argument gives with enough cores (or sleeping gophers); of_theory: measured \
                 over the queueing-theory throughput of a run this long on this machine's \
                 cores (the first item leaves after one whole trip); of_theory_here: the same \
                 with procedures as long as one gopher's took in this run (the sleeps' \
                 overshoot taken out: what is left is the pipeline's cost); trip: one cart's four \
                 procedures as measured (four units asked for: more is sleeps waking late, \
                 or gophers waiting for a shared cart, pile or core)."
                    .into(),
            ],
        }]
    }
}
