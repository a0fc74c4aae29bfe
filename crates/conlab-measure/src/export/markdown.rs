//! GitHub-flavoured Markdown: a `###` heading per titled table, numbers right-aligned, pipes
//! in cells escaped.

use crate::report::Table;

pub(super) fn render(tables: &[Table]) -> String {
    let mut out = String::new();
    for (i, table) in tables.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if let Some(title) = &table.title {
            out.push_str(&format!("### {}\n\n", escape(title)));
        }
        let names: Vec<String> = table.columns.iter().map(|c| escape(&c.name)).collect();
        out.push_str(&format!("| {} |\n", names.join(" | ")));
        let rules: Vec<&str> = table
            .columns
            .iter()
            .map(|c| if c.numeric { "---:" } else { "---" })
            .collect();
        out.push_str(&format!("|{}|\n", rules.join("|")));
        for row in &table.rows {
            let cells: Vec<String> = row.iter().map(|c| escape(&c.shown)).collect();
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        for note in &table.notes {
            out.push_str(&format!("\n{}\n", escape(note)));
        }
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('|', "\\|")
}
