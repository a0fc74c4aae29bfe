//! Aligned columns for a terminal: text left, numbers right, two spaces between columns; a
//! cell's tone becomes green or red only when colour was asked for (a TTY without NO_COLOR,
//! decided by the caller).

use crate::report::{Table, Tone};

pub(super) fn render(tables: &[Table], color: bool) -> String {
    let mut out = String::new();
    for (i, table) in tables.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if let Some(title) = &table.title {
            out.push_str(title);
            out.push('\n');
        }
        let widths: Vec<usize> = table
            .columns
            .iter()
            .enumerate()
            .map(|(c, col)| {
                table
                    .rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|cell| cell.shown.chars().count())
                    .chain([col.name.chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let header: Vec<String> = table
            .columns
            .iter()
            .zip(&widths)
            .map(|(col, &w)| pad(&col.name, w, col.numeric))
            .collect();
        out.push_str(header.join("  ").trim_end());
        out.push('\n');
        for row in &table.rows {
            let cells: Vec<String> = row
                .iter()
                .zip(&table.columns)
                .zip(&widths)
                .map(|((cell, col), &w)| {
                    let text = pad(&cell.shown, w, col.numeric);
                    match (color, cell.tone) {
                        (true, Tone::Good) => format!("\x1b[32m{text}\x1b[0m"),
                        (true, Tone::Bad) => format!("\x1b[31m{text}\x1b[0m"),
                        _ => text,
                    }
                })
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        for note in &table.notes {
            out.push_str(note);
            out.push('\n');
        }
    }
    out
}

fn pad(s: &str, width: usize, right: bool) -> String {
    if right {
        format!("{s:>width$}")
    } else {
        format!("{s:<width$}")
    }
}
