//! Fetch's rows as files: the CSV columns and record of a [`Row`], and the URLs a file of
//! rows (JSON lines or CSV, as `conlab fetch` writes them) already holds, for `--resume`.

use std::collections::HashSet;

use super::Row;

/// The CSV columns, in order.
pub const CSV_COLUMNS: [&str; 12] = [
    "url",
    "final_url",
    "status",
    "title",
    "bytes",
    "latency_ms",
    "attempts",
    "redirects",
    "truncated",
    "depth",
    "error",
    "detail",
];

/// `row` as a CSV record of [`CSV_COLUMNS`]; with `--select`, the title column holds the
/// values as a JSON array.
pub fn csv_record(row: &Row) -> [String; 12] {
    let opt = |v: Option<String>| v.unwrap_or_default();
    let title = match &row.values {
        Some(v) => serde_json::to_string(v).unwrap_or_default(),
        None => opt(row.title.clone()),
    };
    [
        row.url.clone(),
        opt(row.final_url.clone()),
        opt(row.status.map(|s| s.to_string())),
        title,
        row.bytes.to_string(),
        format!("{:.3}", row.latency_ms),
        row.attempts.to_string(),
        row.redirects.to_string(),
        row.truncated.to_string(),
        opt(row.depth.map(|d| d.to_string())),
        opt(row.error.clone()),
        opt(row.detail.clone()),
    ]
}

/// A file of rows that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("row {row} is not a fetch row ({why})")]
pub struct RowsError {
    /// The row (line, or CSV record counting the header as 1).
    pub row: usize,
    /// What is wrong with it.
    pub why: String,
}

/// The `url` of every row in `text`, JSON lines or CSV (with its header).
pub fn urls_in(text: &[u8], csv: bool) -> Result<HashSet<String>, RowsError> {
    let bad = |row: usize, why: String| RowsError { row, why };
    let mut done = HashSet::new();
    if csv {
        let mut reader = csv::Reader::from_reader(text);
        let at = reader
            .headers()
            .ok()
            .and_then(|h| h.iter().position(|c| c == "url"))
            .ok_or_else(|| bad(1, "no `url` column in the header".into()))?;
        for (n, record) in reader.records().enumerate() {
            let record = record.map_err(|e| bad(n + 2, e.to_string()))?;
            if let Some(url) = record.get(at) {
                done.insert(url.to_string());
            }
        }
    } else {
        for (n, line) in text.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let value: serde_json::Value =
                serde_json::from_slice(line).map_err(|e| bad(n + 1, e.to_string()))?;
            let url = value
                .get("url")
                .and_then(|u| u.as_str())
                .ok_or_else(|| bad(n + 1, "no `url`".into()))?;
            done.insert(url.to_string());
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_written_as_csv_are_read_back_with_awkward_titles() {
        let row = Row {
            url: "http://a/1".into(),
            final_url: Some("http://a/1".into()),
            status: Some(200),
            title: Some("a, \"quoted\"\nline".into()),
            values: None,
            bytes: 3,
            latency_ms: 1.0,
            attempts: 1,
            redirects: 0,
            truncated: false,
            depth: None,
            error: None,
            detail: None,
        };
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(CSV_COLUMNS).unwrap();
        w.write_record(csv_record(&row)).unwrap();
        let text = w.into_inner().unwrap();
        let mut r = csv::Reader::from_reader(text.as_slice());
        assert_eq!(
            &r.records().next().unwrap().unwrap()[3],
            "a, \"quoted\"\nline"
        );
        assert_eq!(
            urls_in(&text, true).unwrap(),
            HashSet::from(["http://a/1".to_string()])
        );
        let jsonl = format!("{}\n", serde_json::to_string(&row).unwrap());
        assert_eq!(urls_in(jsonl.as_bytes(), false).unwrap().len(), 1);
        assert_eq!(urls_in(b"{}\n", false).unwrap_err().row, 1);
        assert!(urls_in(b"a,b\n1,2\n", true).is_err());
    }
}
