//! A self-contained SVG of a policy comparison: the latency CDF of each policy at its
//! QPS-at-QoS (left) and the QPS-at-QoS bars (right).

use crate::table::Row;

const COLORS: [&str; 6] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];

/// The plot as SVG text.
pub fn plot(rows: &[Row], title: &str) -> String {
    let (w, h, pad) = (900.0, 420.0, 50.0);
    let (cdf_w, bar_x) = (480.0, 600.0);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{pad}\" y=\"22\" font-size=\"13\">{}</text>\n",
        escape(title)
    );
    let max_ms = rows.iter().flat_map(|r| r.outcome.latencies()).fold(0.0f64, f64::max) * 1e3;
    let max_ms = if max_ms > 0.0 { max_ms } else { 1.0 };
    let (x0, y0, plot_h) = (pad, h - pad, h - 2.0 * pad - 20.0);
    out.push_str(&format!(
        "<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{}\" y2=\"{y0}\" stroke=\"black\"/>\n<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x0}\" y2=\"{}\" stroke=\"black\"/>\n",
        x0 + cdf_w,
        y0 - plot_h
    ));
    out.push_str(&format!(
        "<text x=\"{}\" y=\"{}\">latency (ms), 0 to {max_ms:.2}</text>\n<text x=\"10\" y=\"{}\">CDF</text>\n",
        x0 + 150.0,
        y0 + 30.0,
        y0 - plot_h - 5.0
    ));
    for (i, r) in rows.iter().enumerate() {
        let lat = r.outcome.latencies();
        let n = lat.len().max(1) as f64;
        let points: Vec<String> = lat
            .iter()
            .enumerate()
            .map(|(k, l)| format!("{:.1},{:.1}", x0 + l * 1e3 / max_ms * cdf_w, y0 - (k + 1) as f64 / n * plot_h))
            .collect();
        let color = COLORS[i % COLORS.len()];
        out.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>\n",
            points.join(" ")
        ));
        out.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" fill=\"{color}\">{}</text>\n",
            x0 + 10.0,
            y0 - plot_h + 15.0 * (i + 1) as f64,
            escape(&r.policy)
        ));
    }
    let max_q = rows.iter().map(|r| r.qps_at_qos).fold(0.0f64, f64::max).max(1e-9);
    let bar_w = 250.0 / rows.len().max(1) as f64;
    for (i, r) in rows.iter().enumerate() {
        let bh = r.qps_at_qos / max_q * plot_h;
        let x = bar_x + i as f64 * bar_w;
        out.push_str(&format!(
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"{}\"/>\n<text x=\"{x:.1}\" y=\"{:.1}\">{:.0}</text>\n",
            y0 - bh,
            bar_w * 0.8,
            COLORS[i % COLORS.len()],
            y0 - bh - 4.0,
            r.qps_at_qos
        ));
    }
    out.push_str(&format!("<text x=\"{bar_x}\" y=\"{}\">QPS at QoS (99% within target)</text>\n</svg>\n", y0 + 30.0));
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
