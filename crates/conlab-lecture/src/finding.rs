//! What an experiment reports: a [`Finding`] holds the lecture's [`Claim`], the figures
//! measured here, the [`Series`] a chart of them needs, and a [`Verdict`]. It is a serde type,
//! so the terminal, `--json` and (later) the HTML page all render the same value.

use serde::Serialize;

use crate::machine::MachineShare;

/// A claim of the lecture, as the lecture makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Claim {
    /// The lecture's words, quoted.
    pub quote: &'static str,
    /// Where the lecture makes it: the slide's heading or the code cell.
    pub slide: &'static str,
    /// The lecture's own figure or output, printed beside the one measured here.
    pub figure: &'static str,
}

/// Whether the claim held on this machine, and why the tour says so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Verdict {
    /// The measurement agrees with the claim.
    Held {
        /// The measured figures that decided it, against the stated threshold.
        reason: String,
    },
    /// The claim was tested fairly here and the measurement contradicts it.
    NotHeld {
        /// What was measured against what the claim needs.
        reason: String,
    },
    /// This machine, or this moment, cannot test the claim: one core for a claim about
    /// parallelism, or other programs taking the CPU while it was measured.
    CannotShow {
        /// Why, in the user's terms.
        reason: String,
    },
}

impl Verdict {
    /// [`Verdict::Held`].
    pub fn held(reason: impl Into<String>) -> Verdict {
        Verdict::Held {
            reason: reason.into(),
        }
    }

    /// [`Verdict::NotHeld`].
    pub fn not_held(reason: impl Into<String>) -> Verdict {
        Verdict::NotHeld {
            reason: reason.into(),
        }
    }

    /// [`Verdict::CannotShow`].
    pub fn cannot_show(reason: impl Into<String>) -> Verdict {
        Verdict::CannotShow {
            reason: reason.into(),
        }
    }

    /// True for [`Verdict::Held`].
    pub fn is_held(&self) -> bool {
        matches!(self, Verdict::Held { .. })
    }

    /// The verdict in a word or three, as the terminal prints it.
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Held { .. } => "held",
            Verdict::NotHeld { .. } => "DID NOT HOLD",
            Verdict::CannotShow { .. } => "cannot be shown now",
        }
    }

    /// The reason given with the verdict.
    pub fn reason(&self) -> &str {
        match self {
            Verdict::Held { reason }
            | Verdict::NotHeld { reason }
            | Verdict::CannotShow { reason } => reason,
        }
    }
}

/// One measured number, named and with its unit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    /// A stable identifier: `processes_speedup`, `event_requests_per_cpu_s`.
    pub name: String,
    /// The value, in `unit`.
    pub value: f64,
    /// The unit: `s`, `ms`, `ns`, `x` (a ratio), `req/s`, `items/s`, `req/CPU-s`, `jobs/unit`, `units`,
    /// `bytes`, `count`, `%`.
    pub unit: &'static str,
}

impl Figure {
    /// A figure called `name` of `value` `unit`s.
    pub fn new(name: impl Into<String>, value: f64, unit: &'static str) -> Figure {
        Figure {
            name: name.into(),
            value,
            unit,
        }
    }
}

/// A chart axis: what is plotted along it, in which unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Axis {
    /// `workers`, `connections`, `arrangement`.
    pub label: &'static str,
    /// The unit (empty for a category axis).
    pub unit: &'static str,
}

impl Axis {
    /// Workers of a pool.
    pub const WORKERS: Axis = Axis {
        label: "workers",
        unit: "",
    };
    /// Speedup over the serial run.
    pub const SPEEDUP: Axis = Axis {
        label: "speedup over serial",
        unit: "x",
    };
}

/// One line or bar group of a chart: the points measured for one model or arrangement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    /// The model or arrangement: `processes`, `event`, `in a row`.
    pub name: String,
    /// What x is.
    pub x: Axis,
    /// What y is.
    pub y: Axis,
    /// The points, `[x, y]`.
    pub points: Vec<[f64; 2]>,
}

impl Series {
    /// One model's speedup over serial, by workers.
    pub fn speedup(name: impl Into<String>, points: Vec<[f64; 2]>) -> Series {
        Series {
            name: name.into(),
            x: Axis::WORKERS,
            y: Axis::SPEEDUP,
            points,
        }
    }
}

/// What one experiment of the tour found: the experiment's claim and its [`Outcome`] here.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The experiment's name, as `--only` takes it.
    pub name: &'static str,
    /// A heading.
    pub title: &'static str,
    /// The lecture's claim.
    pub claim: Claim,
    /// What was measured, and the verdict (in the JSON, its fields sit beside the claim).
    #[serde(flatten)]
    pub outcome: Outcome,
    /// How much of the machine other programs took while this ran (`None` where `/proc` is
    /// not there to say).
    pub machine: Option<MachineShare>,
    /// How long the experiment took.
    pub wall_s: f64,
}

impl Finding {
    /// The figure called `name`, if the experiment measured it.
    pub fn figure(&self, name: &str) -> Option<f64> {
        let figures = &self.outcome.figures;
        figures.iter().find(|f| f.name == name).map(|f| f.value)
    }
}

/// What an experiment measured and concluded; the tour adds the claim, the machine's load
/// and the time taken to make a [`Finding`].
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// What ran here, in one line.
    pub setup: String,
    /// Lines shown under the claim: a table, a program's output.
    pub details: Vec<String>,
    /// The measured figure or figures in one line, printed beside the lecture's.
    pub measured: String,
    /// Every figure behind `measured` and the verdict.
    pub figures: Vec<Figure>,
    /// The data of the experiment's chart.
    pub series: Vec<Series>,
    /// Whether the claim held here.
    pub verdict: Verdict,
}
