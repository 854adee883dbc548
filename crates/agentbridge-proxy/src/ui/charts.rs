//! Charts as inline SVG, drawn on the server: no JavaScript and no chart library in the
//! page. Each chart scales to its container (a `viewBox`), names its series in text and
//! by pattern (hatching, dashes) as well as by colour, carries a `<title>` per mark for
//! pointers, and is followed by its numbers as a table for screen readers and keyboards.

use maud::{Markup, html};

/// Width and height of a chart's drawing space (it is scaled to its container).
const W: f64 = 640.0;
const H: f64 = 200.0;
/// Room for the axis labels.
const LEFT: f64 = 56.0;
const BOTTOM: f64 = 22.0;

/// Dash patterns for line series, so lines differ without colour.
const DASHES: [&str; 5] = ["", "6 3", "2 3", "10 3 2 3", "1 6"];

/// A round upper bound for an axis whose largest value is `max`.
pub fn nice_max(max: f64) -> f64 {
    if !(max > 0.0 && max.is_finite()) {
        return 1.0;
    }
    let mag = 10f64.powf(max.log10().floor());
    for step in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if step * mag >= max {
            return step * mag;
        }
    }
    10.0 * mag
}

fn n(v: f64) -> String {
    format!("{v:.1}")
}

/// Columns over time (one per bucket) of `values`, with `overlay` (a part of each value,
/// such as errors among requests) drawn hatched over them. `labels` name the buckets;
/// `fmt` writes a value.
pub fn columns(
    title: &str,
    labels: &[String],
    values: &[f64],
    overlay: Option<(&str, &[f64])>,
    fmt: fn(f64) -> String,
) -> Markup {
    let max = nice_max(values.iter().copied().fold(0.0, f64::max));
    let count = values.len().max(1) as f64;
    let slot = (W - LEFT) / count;
    let bar = (slot * 0.8).max(1.0);
    let y = |v: f64| (H - BOTTOM) - (v / max) * (H - BOTTOM - 8.0);
    let total: f64 = values.iter().sum();
    let summary = format!(
        "{title}: {} in total over {} buckets",
        fmt(total),
        values.len()
    );
    html! {
        figure.chart {
            figcaption { (title) " " span.total { (fmt(total)) } }
            svg viewBox={ "0 0 " (W) " " (H) } role="img" aria-label=(summary) {
                defs {
                    pattern #hatch width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)" {
                        rect width="6" height="6" class="hatch-bg" {}
                        line x1="0" y1="0" x2="0" y2="6" class="hatch-line" {}
                    }
                }
                line.axis x1=(LEFT) y1=(H - BOTTOM) x2=(W) y2=(H - BOTTOM) {}
                text.tick x=(LEFT - 6.0) y=(y(max) + 4.0) text-anchor="end" { (fmt(max)) }
                text.tick x=(LEFT - 6.0) y=(H - BOTTOM) text-anchor="end" { "0" }
                @for (i, v) in values.iter().enumerate() {
                    @let x = LEFT + i as f64 * slot + (slot - bar) / 2.0;
                    rect.bar x=(n(x)) y=(n(y(*v))) width=(n(bar)) height=(n(H - BOTTOM - y(*v))) {
                        title { (labels.get(i).map(String::as_str).unwrap_or("")) ": " (fmt(*v)) }
                    }
                    @if let Some((name, part)) = overlay {
                        @let p = part.get(i).copied().unwrap_or(0.0);
                        @if p > 0.0 {
                            rect.overlay x=(n(x)) y=(n(y(p))) width=(n(bar)) height=(n(H - BOTTOM - y(p))) fill="url(#hatch)" {
                                title { (labels.get(i).map(String::as_str).unwrap_or("")) ": " (fmt(p)) " " (name) }
                            }
                        }
                    }
                }
                @if let (Some(first), Some(last)) = (labels.first(), labels.last()) {
                    text.tick x=(LEFT) y=(H - 4.0) { (first) }
                    text.tick x=(W) y=(H - 4.0) text-anchor="end" { (last) }
                }
            }
            @if let Some((name, _)) = overlay {
                p.legend { span.swatch.solid {} " all " span.swatch.hatched {} " " (name) " (hatched)" }
            }
            details {
                summary { "Numbers" }
                table {
                    thead { tr { th scope="col" { "Hour (UTC)" } th scope="col" { (title) } @if let Some((name, _)) = overlay { th scope="col" { (name) } } } }
                    tbody {
                        @for (i, v) in values.iter().enumerate() {
                            @if *v > 0.0 {
                                tr {
                                    td { (labels.get(i).map(String::as_str).unwrap_or("")) }
                                    td.num { (fmt(*v)) }
                                    @if let Some((_, part)) = overlay { td.num { (fmt(part.get(i).copied().unwrap_or(0.0))) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Horizontal bars, one per item, each labelled with its name and value in text.
/// `data_name` names the chart for tests and scripts (`data-chart`).
pub fn bars(
    title: &str,
    data_name: &str,
    items: &[(String, f64)],
    fmt: fn(f64) -> String,
) -> Markup {
    let max = items
        .iter()
        .map(|(_, v)| *v)
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    let row = 26.0;
    let height = (items.len().max(1) as f64) * row + 4.0;
    let label_w = 200.0;
    let value_w = 90.0;
    let span = W - label_w - value_w;
    html! {
        figure.chart data-chart=(data_name) {
            figcaption { (title) }
            @if items.is_empty() {
                p.empty { "No requests in this period." }
            } @else {
                svg viewBox={ "0 0 " (W) " " (n(height)) } role="img" aria-label=(title) {
                    @for (i, (name, v)) in items.iter().enumerate() {
                        @let top = i as f64 * row + 4.0;
                        text.label x="0" y=(n(top + 15.0)) { (truncate(name, 28)) }
                        rect.bar x=(label_w) y=(n(top)) width=(n((v / max * span).max(1.0))) height="18" {
                            title { (name) ": " (fmt(*v)) }
                        }
                        text.value x=(W) y=(n(top + 15.0)) text-anchor="end" { (fmt(*v)) }
                    }
                }
            }
            details {
                summary { "Numbers" }
                table {
                    thead { tr { th scope="col" { "Name" } th scope="col" { (title) } } }
                    tbody {
                        @for (name, v) in items {
                            tr data-name=(name) { td { (name) } td.num data-value=(v) { (fmt(*v)) } }
                        }
                    }
                }
            }
        }
    }
}

/// Lines over the same buckets, told apart by dash pattern and an end label as well as
/// colour (at most five series are drawn; the table lists them all).
pub fn lines(
    title: &str,
    labels: &[String],
    series: &[(String, Vec<f64>)],
    fmt: fn(f64) -> String,
) -> Markup {
    let max = nice_max(
        series
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .fold(0.0, f64::max),
    );
    let count = labels.len().max(2) as f64 - 1.0;
    let right = 120.0;
    let x = |i: usize| LEFT + i as f64 / count * (W - LEFT - right);
    let y = |v: f64| (H - BOTTOM) - (v.max(0.0) / max) * (H - BOTTOM - 8.0);
    html! {
        figure.chart {
            figcaption { (title) }
            @if series.is_empty() {
                p.empty { "No key has a budget." }
            } @else {
                svg viewBox={ "0 0 " (W) " " (H) } role="img" aria-label=(title) {
                    line.axis x1=(LEFT) y1=(H - BOTTOM) x2=(W - right) y2=(H - BOTTOM) {}
                    text.tick x=(LEFT - 6.0) y=(y(max) + 4.0) text-anchor="end" { (fmt(max)) }
                    text.tick x=(LEFT - 6.0) y=(H - BOTTOM) text-anchor="end" { "0" }
                    @for (k, (name, values)) in series.iter().take(DASHES.len()).enumerate() {
                        @let points: Vec<String> = values.iter().enumerate().map(|(i, v)| format!("{},{}", n(x(i)), n(y(*v)))).collect();
                        polyline class={ "line s" (k) } points=(points.join(" ")) stroke-dasharray=(DASHES[k]) fill="none" {
                            title { (name) }
                        }
                        @if let Some(last) = values.last() {
                            text.label x=(n(W - right + 4.0)) y=(n(y(*last) + 4.0)) { (truncate(name, 16)) }
                        }
                    }
                    @if let (Some(first), Some(last)) = (labels.first(), labels.last()) {
                        text.tick x=(LEFT) y=(H - 4.0) { (first) }
                        text.tick x=(W - right) y=(H - 4.0) text-anchor="end" { (last) }
                    }
                }
            }
            details {
                summary { "Numbers" }
                table {
                    thead { tr { th scope="col" { "Key" } th scope="col" { "At the start" } th scope="col" { "Now" } } }
                    tbody {
                        @for (name, values) in series {
                            tr {
                                td { (name) }
                                td.num { (fmt(values.first().copied().unwrap_or(0.0))) }
                                td.num { (fmt(values.last().copied().unwrap_or(0.0))) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_on_round_numbers() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(11.0), 20.0);
        assert_eq!(nice_max(0.0042), 0.005);
        assert_eq!(nice_max(250.0), 250.0);
    }

    #[test]
    fn bars_name_every_item_in_text_and_escape_it() {
        let html = bars(
            "Spend by key",
            "spend-by-key",
            &[("team <a>".into(), 2.0), ("b".into(), 1.0)],
            |v| format!("${v:.2}"),
        )
        .into_string();
        assert!(html.contains("team &lt;a&gt;"));
        assert!(!html.contains("team <a>"));
        assert!(html.contains("$2.00") && html.contains("$1.00"));
        assert!(html.contains(r#"data-chart="spend-by-key""#));
    }

    #[test]
    fn columns_hatch_the_overlay_and_total_the_values() {
        let labels = vec!["10:00".to_string(), "11:00".to_string()];
        let html = columns(
            "Requests",
            &labels,
            &[3.0, 5.0],
            Some(("errors", &[1.0, 0.0])),
            |v| format!("{v}"),
        )
        .into_string();
        assert_eq!(html.matches("url(#hatch)").count(), 1);
        assert!(html.contains(r#"<span class="total">8</span>"#));
        assert!(html.contains("(hatched)"));
    }
}
