//! Server-rendered SVG charts (no JavaScript): a bar chart and a daily line chart. The markup uses
//! presentation attributes only, so the strict CSP (no inline styles) holds.

/// Escapes text for SVG/XML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A bar chart: one bar per (label, value), the largest value labelled with `fmt(max)`, the
/// first and last labels under the axis, each bar titled "label: fmt(value)" for screen readers
/// and hover. `title` is the chart's accessible name.
pub fn bars(title: &str, series: &[(String, i64)], fmt: impl Fn(i64) -> String) -> String {
    let (w, h, left, bottom, top) = (640.0_f64, 180.0_f64, 8.0_f64, 22.0_f64, 18.0_f64);
    let max = series.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let n = series.len().max(1) as f64;
    let slot = (w - left * 2.0) / n;
    let bar = (slot * 0.7).max(1.0);
    let plot_h = h - bottom - top;
    let mut out = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\" xmlns=\"http://www.w3.org/2000/svg\">",
        esc(title)
    );
    out.push_str(&format!(
        "<line x1=\"{left}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" stroke=\"#e6e7eb\"/>",
        y = h - bottom,
        x2 = w - left
    ));
    out.push_str(&format!(
        "<text x=\"{left}\" y=\"12\" font-size=\"11\" fill=\"#80838f\">{}</text>",
        esc(&fmt(max))
    ));
    for (i, (label, v)) in series.iter().enumerate() {
        let bh = (*v as f64 / max as f64) * plot_h;
        let x = left + i as f64 * slot + (slot - bar) / 2.0;
        let y = h - bottom - bh;
        out.push_str(&format!(
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{bh:.1}\" fill=\"#e8364f\"><title>{}: {}</title></rect>",
            esc(label),
            esc(&fmt(*v))
        ));
    }
    if let (Some((first, _)), Some((last, _))) = (series.first(), series.last()) {
        out.push_str(&format!(
            "<text x=\"{left}\" y=\"{y}\" font-size=\"11\" fill=\"#80838f\">{}</text>",
            esc(first),
            y = h - 6.0
        ));
        out.push_str(&format!(
            "<text x=\"{x}\" y=\"{y}\" font-size=\"11\" fill=\"#80838f\" text-anchor=\"end\">{}</text>",
            esc(last),
            x = w - left,
            y = h - 6.0
        ));
    }
    out.push_str("</svg>");
    out
}

/// A line chart of a daily series ("YYYY-MM-DD", value), oldest first: x is the calendar day,
/// so a day without a value or without a snapshot breaks the line. The y axis spans the
/// values' min and max (labelled), the x axis the first and last day. Presentation attributes
/// only (the CSP forbids inline styles).
pub fn line(title: &str, series: &[(&str, Option<f64>)]) -> String {
    let (w, h, left, right, top, bottom) = (640.0_f64, 160.0_f64, 40.0, 8.0, 10.0, 22.0);
    let day = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
    let first = series.first().and_then(|(d, _)| day(d));
    // Day offsets from the first day (the index when a day does not parse).
    let xs: Vec<i64> = series
        .iter()
        .enumerate()
        .map(|(i, (d, _))| match (first, day(d)) {
            (Some(f), Some(d)) => (d - f).num_days(),
            _ => i as i64,
        })
        .collect();
    let span = xs.last().copied().unwrap_or(0).max(1) as f64;
    let values = series.iter().filter_map(|(_, v)| *v);
    let lo = values.clone().fold(f64::INFINITY, f64::min);
    let hi = values.fold(f64::NEG_INFINITY, f64::max);
    let mut out = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\" xmlns=\"http://www.w3.org/2000/svg\">",
        esc(title)
    );
    let base = h - bottom;
    out.push_str(&format!(
        "<line x1=\"{left}\" y1=\"{base}\" x2=\"{x2}\" y2=\"{base}\" stroke=\"#e6e7eb\"/>",
        x2 = w - right
    ));
    if lo.is_finite() {
        // A flat series sits mid-height.
        let (y_lo, y_hi) = if hi - lo < 1e-9 {
            (lo - 0.1, hi + 0.1)
        } else {
            (lo, hi)
        };
        let x = |d: i64| left + (w - left - right) * d as f64 / span;
        let y = |v: f64| top + (base - top) * (y_hi - v) / (y_hi - y_lo);
        for (label, v) in [(hi, y(hi)), (lo, y(lo))] {
            out.push_str(&format!(
                "<text x=\"{tx}\" y=\"{ty:.1}\" font-size=\"11\" fill=\"#80838f\" text-anchor=\"end\">{label:.2}</text>",
                tx = left - 4.0,
                ty = v + 4.0
            ));
        }
        // Runs of consecutive days with a value.
        let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
        let mut prev: Option<i64> = None;
        for ((d, v), &xd) in series.iter().zip(&xs) {
            let Some(v) = v else {
                prev = None;
                continue;
            };
            let p = (x(xd), y(*v));
            match runs.last_mut() {
                Some(run) if prev == Some(xd - 1) => run.push(p),
                _ => runs.push(vec![p]),
            }
            prev = Some(xd);
            out.push_str(&format!(
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2\" fill=\"#e8364f\"><title>{}: {v:.2}</title></circle>",
                p.0,
                p.1,
                esc(d)
            ));
        }
        for run in runs.iter().filter(|r| r.len() > 1) {
            let pts: Vec<String> = run.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
            out.push_str(&format!(
                "<polyline points=\"{}\" fill=\"none\" stroke=\"#e8364f\" stroke-width=\"1.5\"/>",
                pts.join(" ")
            ));
        }
    }
    if let (Some((f, _)), Some((l, _))) = (series.first(), series.last()) {
        out.push_str(&format!(
            "<text x=\"{left}\" y=\"{ty}\" font-size=\"11\" fill=\"#80838f\">{}</text>",
            esc(f),
            ty = h - 6.0
        ));
        out.push_str(&format!(
            "<text x=\"{tx}\" y=\"{ty}\" font-size=\"11\" fill=\"#80838f\" text-anchor=\"end\">{}</text>",
            esc(l),
            tx = w - right,
            ty = h - 6.0
        ));
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_value_and_escape_labels() {
        let s = bars(
            "GMV <x>",
            &[("a&b".into(), 50), ("c".into(), 100), ("d".into(), 0)],
            |v| v.to_string(),
        );
        assert!(s.contains("aria-label=\"GMV &lt;x&gt;\""));
        assert!(s.contains("<title>a&amp;b: 50</title>"));
        assert_eq!(s.matches("<rect").count(), 3);
        // The largest bar fills the plot (180 - 22 - 18 = 140), half of it 70.
        assert!(s.contains("height=\"140.0\""));
        assert!(s.contains("height=\"70.0\""));
        assert!(!bars("empty", &[], |v| v.to_string()).contains("<rect"));
    }

    #[test]
    fn line_chart_breaks_at_gaps_and_escapes() {
        let s = line(
            "a<b",
            &[
                ("2026-01-01", Some(4.5)),
                ("2026-01-02", Some(4.7)),
                ("2026-01-03", None),
                ("2026-01-04", Some(4.6)),
                ("2026-01-06", Some(4.8)),
                ("2026-01-07", Some(4.9)),
            ],
        );
        assert!(s.contains("aria-label=\"a&lt;b\""));
        // Two runs of two days; the lone 01-04 is a dot only.
        assert_eq!(s.matches("<polyline").count(), 2);
        assert_eq!(s.matches("<circle").count(), 5);
        assert!(s.contains(">4.90<") && s.contains(">4.50<"));
        assert!(s.contains(">2026-01-01<") && s.contains(">2026-01-07<"));
        let empty = line("x", &[("2026-01-01", None)]);
        assert!(!empty.contains("<circle") && !empty.contains("NaN") && !empty.contains("inf"));
    }
}
