//! The shape every report is rendered through: titled tables of cells that carry both what a
//! person reads (`12.3 ms`) and what a program reads (`0.0123`), so one table gives the
//! terminal, Markdown and CSV. JSON is the report's own serde shape, not a table.

use serde::Serialize;

/// A table: a title, columns, rows of cells, and notes printed under it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Table {
    /// Printed above the table (`None`: no heading).
    pub title: Option<String>,
    /// The columns, in order.
    pub columns: Vec<Column>,
    /// One `Vec<Cell>` per row, as many cells as columns.
    pub rows: Vec<Vec<Cell>>,
    /// Lines printed under the table (a verdict, a caveat).
    pub notes: Vec<String>,
}

/// A column heading; numbers align right.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Column {
    /// The heading, with the unit of the raw value when it has one: `wall_s`.
    pub name: String,
    /// Align right (numbers) rather than left (text).
    pub numeric: bool,
}

impl Column {
    /// A text column.
    pub fn text(name: &str) -> Self {
        Column {
            name: name.to_string(),
            numeric: false,
        }
    }

    /// A numeric column.
    pub fn number(name: &str) -> Self {
        Column {
            name: name.to_string(),
            numeric: true,
        }
    }
}

/// How a cell should look on a colour terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum Tone {
    /// No colour.
    #[default]
    Plain,
    /// Green: a claim held, the winner.
    Good,
    /// Red: a claim failed, an error count above zero.
    Bad,
}

/// One cell: shown to people, raw for CSV.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    /// What the terminal and Markdown show.
    pub shown: String,
    /// What CSV holds: the number without its unit, or the text.
    pub raw: String,
    /// Colour hint.
    pub tone: Tone,
}

impl Cell {
    /// A text cell.
    pub fn text(s: impl Into<String>) -> Self {
        let s = s.into();
        Cell {
            shown: s.clone(),
            raw: s,
            tone: Tone::Plain,
        }
    }

    /// A number shown as `shown`, exported as `raw`.
    pub fn number(raw: f64, shown: String) -> Self {
        Cell {
            shown,
            raw: format_raw(raw),
            tone: Tone::Plain,
        }
    }

    /// Colours this cell.
    pub fn tone(mut self, tone: Tone) -> Self {
        self.tone = tone;
        self
    }
}

/// Raw numbers: integers without a fraction, others with 6 significant digits (so 224 ns
/// is `0.000000224`, not a rounded `0`).
fn format_raw(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    if !v.is_finite() {
        return format!("{v}");
    }
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = (5 - magnitude).clamp(0, 20) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A duration in seconds, shown in the unit that suits it: `850 ns`, `12.3 us`, `4.56 ms`,
/// `1.23 s`.
pub fn seconds(s: f64) -> Cell {
    let shown = if s < 1e-8 {
        format!("{:.1} ns", s * 1e9)
    } else if s < 1e-6 {
        format!("{:.0} ns", s * 1e9)
    } else if s < 1e-3 {
        format!("{:.1} us", s * 1e6)
    } else if s < 1.0 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    };
    Cell::number(s, shown)
}

/// A count per second with thousands separators: `1,234,567/s`.
pub fn rate(per_s: f64) -> Cell {
    let shown = if per_s > 0.0 && per_s < 10.0 {
        // A slow rate keeps two significant digits: 0.40/s is not 0/s.
        let decimals = (1 - per_s.log10().floor() as i32).clamp(1, 6) as usize;
        format!("{per_s:.decimals$}/s")
    } else {
        format!("{}/s", thousands(per_s.round() as u64))
    };
    Cell::number(per_s, shown)
}

/// Bytes as `12.3 MiB`.
pub fn bytes(b: u64) -> Cell {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    let shown = if unit == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    };
    Cell::number(b as f64, shown)
}

/// A plain number with `decimals` places and a suffix: `1.93x`, `96%`.
pub fn fixed(v: f64, decimals: usize, suffix: &str) -> Cell {
    Cell::number(v, format!("{v:.decimals$}{suffix}"))
}

/// An integer with thousands separators.
pub fn count(n: u64) -> Cell {
    Cell::number(n as f64, thousands(n))
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_rates_keep_two_significant_digits() {
        assert_eq!(rate(0.402).shown, "0.40/s");
        assert_eq!(rate(3.24).shown, "3.2/s");
        assert_eq!(rate(0.0012).shown, "0.0012/s");
        assert_eq!(rate(12345.6).shown, "12,346/s");
        assert_eq!(rate(0.0).shown, "0/s");
    }

    #[test]
    fn raw_numbers_keep_six_significant_digits() {
        for (v, raw) in [
            (2.24e-7, "0.000000224"),
            (0.1239, "0.1239"),
            (1.0 / 0.52, "1.92308"),
            (12345.678, "12345.7"),
            (42.0, "42"),
            (-0.0005, "-0.0005"),
        ] {
            assert_eq!(format_raw(v), raw, "{v}");
        }
    }

    #[test]
    fn cells_pick_a_readable_unit_and_keep_the_raw_number() {
        assert_eq!(seconds(0.000_000_85).shown, "850 ns");
        assert_eq!(seconds(0.000_000_000_4).shown, "0.4 ns");
        assert_eq!(seconds(0.0123).shown, "12.30 ms");
        assert_eq!(seconds(0.0123).raw, "0.0123");
        assert_eq!(seconds(2.5).shown, "2.50 s");
        assert_eq!(rate(1_234_567.4).shown, "1,234,567/s");
        assert_eq!(bytes(5 * 1024 * 1024).shown, "5.0 MiB");
        assert_eq!(bytes(5 * 1024 * 1024).raw, "5242880");
        assert_eq!(count(1000).shown, "1,000");
        assert_eq!(fixed(1.934, 2, "x").shown, "1.93x");
    }
}
