//! Server-rendered SVG charts (no JavaScript): a bar chart of a daily series. The markup uses
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
}
