//! CSV (RFC 4180): raw numbers, a header line per table, tables separated by a blank line.
//! Quoting is the whole of the format's difficulty, so it is written out here rather than
//! pulling in a crate for it.

use crate::report::Table;

pub(super) fn render(tables: &[Table]) -> String {
    let mut out = String::new();
    for (i, table) in tables.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        line(&mut out, table.columns.iter().map(|c| c.name.as_str()));
        for row in &table.rows {
            line(&mut out, row.iter().map(|c| c.raw.as_str()));
        }
    }
    out
}

fn line<'a>(out: &mut String, fields: impl Iterator<Item = &'a str>) {
    for (i, field) in fields.enumerate() {
        if i > 0 {
            out.push(',');
        }
        if field.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&field.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(field);
        }
    }
    out.push('\n');
}
