//! Reports as self-contained HTML pages (`--html FILE`): inline CSS and SVG, no script, no
//! font, no request, light and dark by `prefers-color-scheme`, readable on a phone and in
//! print. [`Chart`] draws a line chart of numeric series as SVG, every point with its exact
//! figure on hover (an SVG `<title>`) and its data as a table underneath; [`Page`] puts
//! sections together and embeds the report's JSON, so the page alone reproduces every
//! figure.
//!
//! A small module of our own rather than a crate: the charts are a handful of lines and
//! points over the report types; plotters with only its SVG backend is five crates, and
//! charming draws through a JavaScript engine. Output is deterministic (fixed precision,
//! no ids from counters), so pages and charts are golden-tested.

use std::fmt::Write as _;

/// One line of a chart: a name and its points, `[x, y]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// The legend's name.
    pub name: String,
    /// The points, in x order or not (drawn in x order).
    pub points: Vec<[f64; 2]>,
    /// Drawn dashed: a reference, such as the ideal.
    pub reference: bool,
}

/// A line chart of numeric series.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Its caption.
    pub title: String,
    /// What x is, with its unit (`connections`, `workers`).
    pub x_label: String,
    /// What y is, with its unit (`pages per second (pages/s)`).
    pub y_label: String,
    /// The lines.
    pub lines: Vec<Line>,
    /// A logarithmic y axis (latencies).
    pub log_y: bool,
}

/// HTML's five special characters escaped, for text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A figure for a label: few digits, no exponent for the sizes reports have.
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    let a = v.abs();
    if a >= 100.0 || a == 0.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.01 {
        format!("{v:.2}")
    } else {
        format!("{v:.2e}")
    }
}

/// A figure for a table: six significant digits (the JSON has every digit).
fn figure(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return number(v);
    }
    let digits = (5 - v.abs().log10().floor() as i32).clamp(0, 12) as usize;
    let text = format!("{v:.digits$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// Tick values over `[lo, hi]`: 1, 2 or 5 times a power of ten apart, about five of them;
/// whole numbers only when the values are (workers, connections).
fn ticks(lo: f64, hi: f64, whole: bool) -> Vec<f64> {
    let span = (hi - lo).max(f64::MIN_POSITIVE);
    let raw = span / 5.0;
    let power = 10f64.powf(raw.log10().floor());
    let mut step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * power);
    if whole {
        step = step.max(1.0);
    }
    let first = (lo / step).ceil() * step;
    let mut out = Vec::new();
    let mut t = first;
    while t <= hi + step * 1e-9 && out.len() < 12 {
        out.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    out
}

/// Plot area, in SVG units.
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 320.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 48.0;

impl Chart {
    /// The chart as an inline `<svg>` (scaled to its container's width).
    pub fn svg(&self) -> String {
        let points: Vec<[f64; 2]> = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter().copied())
            .filter(|p| p[0].is_finite() && p[1].is_finite() && (!self.log_y || p[1] > 0.0))
            .collect();
        let mut svg = String::new();
        let _ = write!(
            svg,
            "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{}\">",
            escape(&self.title)
        );
        let _ = write!(svg, "<title>{}</title>", escape(&self.title));
        if points.is_empty() {
            let _ = write!(
                svg,
                "<text x=\"{}\" y=\"{}\" class=\"note\">no data</text></svg>",
                WIDTH / 2.0,
                HEIGHT / 2.0
            );
            return svg;
        }
        let fold = |f: fn(f64, f64) -> f64, i: usize, start: f64| {
            points.iter().map(|p| p[i]).fold(start, f)
        };
        let (mut x0, mut x1) = (
            fold(f64::min, 0, f64::INFINITY),
            fold(f64::max, 0, f64::NEG_INFINITY),
        );
        if (x1 - x0).abs() < f64::EPSILON {
            (x0, x1) = (x0 - 1.0, x1 + 1.0);
        }
        let y_max = fold(f64::max, 1, f64::NEG_INFINITY);
        let (y0, y1) = if self.log_y {
            let lo = fold(f64::min, 1, f64::INFINITY);
            (
                10f64.powf(lo.log10().floor()),
                10f64.powf(y_max.log10().ceil().max(lo.log10().floor() + 1.0)),
            )
        } else {
            (
                0.0_f64.min(fold(f64::min, 1, f64::INFINITY)),
                if y_max > 0.0 { y_max * 1.1 } else { 1.0 },
            )
        };
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let sx = |x: f64| LEFT + (x - x0) / (x1 - x0) * plot_w;
        let sy = |y: f64| {
            let f = if self.log_y {
                (y.log10() - y0.log10()) / (y1.log10() - y0.log10())
            } else {
                (y - y0) / (y1 - y0)
            };
            TOP + plot_h - f * plot_h
        };
        // Axes and grid.
        let _ = write!(
            svg,
            "<g class=\"axis\"><line x1=\"{LEFT}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\"/><line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{0}\"/>",
            TOP + plot_h,
            LEFT + plot_w
        );
        let y_ticks: Vec<f64> = if self.log_y {
            let (a, b) = (y0.log10().round() as i32, y1.log10().round() as i32);
            (a..=b).map(|e| 10f64.powi(e)).collect()
        } else {
            ticks(y0, y1, false)
        };
        for t in y_ticks {
            let y = sy(t);
            let _ = write!(
                svg,
                "<line class=\"grid\" x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                LEFT + plot_w,
                LEFT - 6.0,
                y + 4.0,
                number(t)
            );
        }
        let whole = points.iter().all(|p| p[0].fract() == 0.0);
        for t in ticks(x0, x1, whole) {
            let x = sx(t);
            let _ = write!(
                svg,
                "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                TOP + plot_h + 16.0,
                number(t)
            );
        }
        let _ = write!(
            svg,
            "<text class=\"label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text><text class=\"label\" transform=\"translate(14 {:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text></g>",
            LEFT + plot_w / 2.0,
            HEIGHT - 8.0,
            escape(&self.x_label),
            TOP + plot_h / 2.0,
            escape(&self.y_label)
        );
        // The lines, each a series class for its colour, every point with its figure.
        for (i, line) in self.lines.iter().enumerate() {
            let mut pts: Vec<[f64; 2]> = line
                .points
                .iter()
                .copied()
                .filter(|p| p[0].is_finite() && p[1].is_finite() && (!self.log_y || p[1] > 0.0))
                .collect();
            pts.sort_by(|a, b| a[0].total_cmp(&b[0]));
            let class = if line.reference {
                "series reference".to_string()
            } else {
                format!("series s{}", i % 6)
            };
            let _ = write!(
                svg,
                "<g class=\"{class}\" data-series=\"{}\">",
                escape(&line.name)
            );
            let _ = write!(svg, "<title>{}</title>", escape(&line.name));
            if pts.len() > 1 {
                let path: Vec<String> = pts
                    .iter()
                    .map(|p| format!("{:.1},{:.1}", sx(p[0]), sy(p[1])))
                    .collect();
                let _ = write!(svg, "<polyline points=\"{}\"/>", path.join(" "));
            }
            for p in &pts {
                let _ = write!(
                    svg,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\"><title>{}: {} {}, {}</title></circle>",
                    sx(p[0]),
                    sy(p[1]),
                    escape(&line.name),
                    escape(&self.x_label),
                    number(p[0]),
                    number(p[1])
                );
            }
            svg.push_str("</g>");
        }
        svg.push_str("</svg>");
        svg
    }

    /// The chart's data as an HTML table: one row per x, one column per line.
    pub fn table(&self) -> String {
        let mut xs: Vec<f64> = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p[0]))
            .collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        let mut html = format!(
            "<table><caption>{}</caption><thead><tr><th scope=\"col\">{}</th>",
            escape(&self.title),
            escape(&self.x_label)
        );
        for line in &self.lines {
            let _ = write!(html, "<th scope=\"col\">{}</th>", escape(&line.name));
        }
        html.push_str("</tr></thead><tbody>");
        for x in xs {
            let _ = write!(html, "<tr><th scope=\"row\">{}</th>", number(x));
            for line in &self.lines {
                let cell = line
                    .points
                    .iter()
                    .find(|p| p[0] == x)
                    .map_or(String::new(), |p| figure(p[1]));
                let _ = write!(html, "<td>{cell}</td>");
            }
            html.push_str("</tr>");
        }
        html.push_str("</tbody></table>");
        html
    }
}

/// A horizontal bar chart: one bar per category (counts: statuses, errors).
#[derive(Debug, Clone, PartialEq)]
pub struct Bars {
    /// Its caption.
    pub title: String,
    /// What the bars measure, with its unit.
    pub value_label: String,
    /// The categories and their values, in the order shown.
    pub bars: Vec<(String, f64)>,
}

/// Height of one bar's row, in SVG units.
const BAR_ROW: f64 = 24.0;

impl Bars {
    /// The bars as an inline `<svg>`: a row each, its label, its bar, its figure.
    pub fn svg(&self) -> String {
        let height = TOP + BOTTOM + BAR_ROW * self.bars.len().max(1) as f64;
        let mut svg = format!(
            "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"{0}\"><title>{0}</title>",
            escape(&self.title)
        );
        let max = self
            .bars
            .iter()
            .map(|b| b.1)
            .filter(|v| v.is_finite())
            .fold(0.0_f64, f64::max);
        if self.bars.is_empty() {
            let _ = write!(
                svg,
                "<text x=\"{}\" y=\"{}\" class=\"note\">no data</text></svg>",
                WIDTH / 2.0,
                height / 2.0
            );
            return svg;
        }
        let label_w = 160.0;
        let plot_w = WIDTH - label_w - RIGHT - 64.0;
        for (i, (name, value)) in self.bars.iter().enumerate() {
            let y = TOP + BAR_ROW * i as f64;
            let w = if max > 0.0 && value.is_finite() {
                value.max(0.0) / max * plot_w
            } else {
                0.0
            };
            let _ = write!(
                svg,
                "<g class=\"series s{}\" data-series=\"{name}\"><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{name}</text><rect x=\"{label_w}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\"><title>{name}: {}</title></rect><text x=\"{:.1}\" y=\"{:.1}\">{}</text></g>",
                i % 6,
                label_w - 8.0,
                y + BAR_ROW * 0.65,
                y + 3.0,
                BAR_ROW - 6.0,
                figure(*value),
                label_w + w + 6.0,
                y + BAR_ROW * 0.65,
                number(*value),
                name = escape(name),
            );
        }
        let _ = write!(
            svg,
            "<text class=\"label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text></svg>",
            label_w + plot_w / 2.0,
            height - 12.0,
            escape(&self.value_label)
        );
        svg
    }

    /// The bars' data as an HTML table.
    pub fn table(&self) -> String {
        let mut html = format!(
            "<table><caption>{}</caption><thead><tr><th scope=\"col\"></th><th scope=\"col\">{}</th></tr></thead><tbody>",
            escape(&self.title),
            escape(&self.value_label)
        );
        for (name, value) in &self.bars {
            let _ = write!(
                html,
                "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
                escape(name),
                figure(*value)
            );
        }
        html.push_str("</tbody></table>");
        html
    }
}

/// The page's style: system fonts, a light and a dark palette, print without colour
/// backgrounds, a width that follows the screen.
const STYLE: &str = "\
:root{--fg:#1b1f24;--bg:#fff;--muted:#5b6470;--grid:#e3e6ea;--held:#1a7f37;--not:#cf222e;--cannot:#9a6700;\
--s0:#0969da;--s1:#cf222e;--s2:#1a7f37;--s3:#8250df;--s4:#bc4c00;--s5:#0a7f8a}\
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--bg:#0d1117;--muted:#9198a1;--grid:#30363d;\
--held:#3fb950;--not:#f85149;--cannot:#d29922;--s0:#4493f8;--s1:#f85149;--s2:#3fb950;--s3:#ab7df8;--s4:#db6d28;--s5:#39c5cf}}\
body{font:16px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;color:var(--fg);background:var(--bg);margin:0 auto;max-width:60rem;padding:1rem}\
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2.5rem;border-top:1px solid var(--grid);padding-top:1rem}\
blockquote{margin:0.5rem 0;padding-left:1rem;border-left:3px solid var(--grid);color:var(--muted)}\
.verdict{font-weight:600}.held{color:var(--held)}.not-held{color:var(--not)}.cannot-show{color:var(--cannot)}\
svg.chart{width:100%;height:auto;max-width:40rem;display:block;font-size:11px}\
svg text{fill:var(--fg)}svg .label{fill:var(--muted);font-size:12px}svg .note{fill:var(--muted)}\
.axis line{stroke:var(--fg)}.axis line.grid{stroke:var(--grid)}\
.series polyline{fill:none;stroke-width:2}.series circle{stroke:var(--bg);stroke-width:1}\
.s0 polyline{stroke:var(--s0)}.s0 circle{fill:var(--s0)}.s1 polyline{stroke:var(--s1)}.s1 circle{fill:var(--s1)}\
.s2 polyline{stroke:var(--s2)}.s2 circle{fill:var(--s2)}.s3 polyline{stroke:var(--s3)}.s3 circle{fill:var(--s3)}\
.s4 polyline{stroke:var(--s4)}.s4 circle{fill:var(--s4)}.s5 polyline{stroke:var(--s5)}.s5 circle{fill:var(--s5)}\
rect{fill:var(--c,var(--s0))}.s0 rect{fill:var(--s0)}.s1 rect{fill:var(--s1)}.s2 rect{fill:var(--s2)}\
.s3 rect{fill:var(--s3)}.s4 rect{fill:var(--s4)}.s5 rect{fill:var(--s5)}\
.reference polyline{stroke:var(--muted);stroke-dasharray:6 4}.reference circle{fill:var(--muted)}\
.legend{display:flex;flex-wrap:wrap;gap:0.25rem 1rem;font-size:0.9rem;padding:0;list-style:none}\
.legend li::before{content:'';display:inline-block;width:1rem;height:0.2rem;margin-right:0.35rem;vertical-align:middle;background:var(--c)}\
table{border-collapse:collapse;margin:0.5rem 0 1rem;font-size:0.85rem;display:block;overflow-x:auto}\
caption{text-align:left;color:var(--muted)}th,td{border:1px solid var(--grid);padding:0.2rem 0.5rem;text-align:right}\
figure{margin:1rem 0}details{margin:0.5rem 0}pre{white-space:pre-wrap;word-break:break-word}\
@media print{body{max-width:none}h2{break-before:auto;break-inside:avoid}svg.chart{break-inside:avoid}details{display:none}}";

/// A legend for `chart`'s lines, in their colours.
fn legend(chart: &Chart) -> String {
    let mut html = String::from("<ul class=\"legend\">");
    for (i, line) in chart.lines.iter().enumerate() {
        let colour = if line.reference {
            "var(--muted)".to_string()
        } else {
            format!("var(--s{})", i % 6)
        };
        let _ = write!(
            html,
            "<li style=\"--c:{colour}\">{}</li>",
            escape(&line.name)
        );
    }
    html.push_str("</ul>");
    html
}

/// A self-contained page being built.
#[derive(Debug, Clone, Default)]
pub struct Page {
    title: String,
    body: String,
}

impl Page {
    /// A page titled `title`.
    pub fn new(title: &str) -> Page {
        Page {
            title: title.to_string(),
            body: format!("<h1>{}</h1>", escape(title)),
        }
    }

    /// Appends HTML the caller made (escaped where it holds text: see [`escape`]).
    pub fn raw(&mut self, html: &str) -> &mut Page {
        self.body.push_str(html);
        self
    }

    /// Appends a paragraph of text.
    pub fn paragraph(&mut self, text: &str) -> &mut Page {
        let _ = write!(self.body, "<p>{}</p>", escape(text));
        self
    }

    /// Appends `chart`, its legend, and its data as a table.
    pub fn chart(&mut self, chart: &Chart) -> &mut Page {
        let _ = write!(
            self.body,
            "<figure>{}{}{}</figure>",
            chart.svg(),
            legend(chart),
            chart.table()
        );
        self
    }

    /// Appends `bars` and their data as a table.
    pub fn bars(&mut self, bars: &Bars) -> &mut Page {
        let _ = write!(self.body, "<figure>{}{}</figure>", bars.svg(), bars.table());
        self
    }

    /// The whole page, with `json` (the report) embedded where a script cannot run it.
    pub fn finish(&self, json: &str) -> String {
        // `</` inside the JSON would end the element: `<\/` is the same JSON.
        let json = json.replace("</", "<\\/");
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\"><title>{}</title><style>{STYLE}</style></head><body>{}<details><summary>The report as JSON (every figure on this page)</summary><script type=\"application/json\" id=\"report\">{json}</script><pre>{}</pre></details></body></html>\n",
            escape(&self.title),
            self.body,
            escape(&json)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> Chart {
        Chart {
            title: "Pages per second by connections".into(),
            x_label: "connections".into(),
            y_label: "pages per second (pages/s)".into(),
            lines: vec![
                Line {
                    name: "threads".into(),
                    points: vec![[20.0, 343.0], [200.0, 2804.0], [1000.0, 7802.0]],
                    reference: false,
                },
                Line {
                    name: "async <&>".into(),
                    points: vec![[20.0, 375.0], [200.0, 3286.0], [1000.0, 13067.0]],
                    reference: false,
                },
                Line {
                    name: "Little's law".into(),
                    points: vec![[20.0, 400.0], [200.0, 4000.0], [1000.0, 20000.0]],
                    reference: true,
                },
            ],
            log_y: false,
        }
    }

    #[test]
    fn a_chart_is_the_same_svg_every_time() {
        insta::assert_snapshot!(chart().svg());
    }

    #[test]
    fn every_point_has_its_figure_and_every_name_is_escaped() {
        let svg = chart().svg();
        assert_eq!(svg.matches("<circle").count(), 9);
        assert!(
            svg.contains("<title>threads: connections 1000, 7802</title>"),
            "{svg}"
        );
        assert!(svg.contains("async &lt;&amp;&gt;") && !svg.contains("async <&>"));
        assert!(svg.contains("data-series=\"Little&#39;s law\""));
        let table = chart().table();
        assert_eq!(
            table.matches("<tr>").count(),
            4,
            "a header and three x values"
        );
        assert!(table.contains("<td>13067</td>"));
        let mut log = chart();
        log.log_y = true;
        assert!(log.svg().contains(">10000<"), "powers of ten on a log axis");
        let empty = Chart {
            lines: Vec::new(),
            ..chart()
        };
        assert!(empty.svg().contains("no data"));
    }

    #[test]
    fn a_page_embeds_its_json_where_it_cannot_end_the_script() {
        let mut page = Page::new("Tour <1>");
        page.paragraph("a & b").chart(&chart());
        let html = page.finish(r#"{"quote":"</script><b>"}"#);
        assert!(
            html.starts_with("<!doctype html>") && html.contains("<title>Tour &lt;1&gt;</title>")
        );
        assert!(
            html.contains(r#"{"quote":"<\/script><b>"}</script>"#),
            "{html}"
        );
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "no request leaves the page"
        );
        assert!(html.contains("prefers-color-scheme:dark"));
    }

    #[test]
    fn bars_are_one_row_each_with_their_figure() {
        let bars = Bars {
            title: "Rows by status".into(),
            value_label: "rows".into(),
            bars: vec![("200".into(), 4990.0), ("404 <x>".into(), 8.0)],
        };
        let svg = bars.svg();
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains("<title>200: 4990</title>") && svg.contains("404 &lt;x&gt;"));
        assert!(bars.table().contains("<td>8</td>"));
        insta::assert_snapshot!(svg);
    }

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(
            ticks(0.0, 22000.0, false),
            [0.0, 5000.0, 10000.0, 15000.0, 20000.0]
        );
        assert_eq!(
            ticks(20.0, 1000.0, true),
            [200.0, 400.0, 600.0, 800.0, 1000.0]
        );
        assert_eq!(ticks(1.0, 2.0, true), [1.0, 2.0], "workers are whole");
        assert_eq!(figure(2.836_627_653_443_62), "2.83663");
        assert_eq!(figure(13067.0), "13067");
        assert_eq!(number(0.5), "0.50");
        assert_eq!(number(12.34), "12.3");
    }
}
