//! The dashboard's validations-per-day chart: inline SVG, no JavaScript.

use heratio_keys_core::model::DayCount;
use maud::{html, Markup};

/// Validations per day as an inline SVG bar chart (total behind, valid in
/// front), with a `<title>` per day for hover details. No JavaScript.
pub(crate) fn usage_chart(days: &[DayCount]) -> Markup {
    const W: f64 = 720.0;
    const H: f64 = 220.0;
    const LEFT: f64 = 56.0;
    const BOTTOM: f64 = 24.0;
    const TOP: f64 = 24.0;
    let plot_w = W - LEFT - 6.0;
    let plot_h = H - BOTTOM - TOP;
    let max = days.iter().map(|d| d.total).max().unwrap_or(0).max(1);
    let scale_max = tidy_ceiling(max);
    let n = days.len().max(1);
    let slot = plot_w / n as f64;
    let bar = (slot * 0.7).max(1.0);
    let y_of = |v: i64| TOP + plot_h - (v as f64 / scale_max as f64) * plot_h;
    let total: i64 = days.iter().map(|d| d.total).sum();
    let label = |d: &DayCount| d.date.get(5..).unwrap_or(&d.date).to_owned();
    html! {
        svg.usage-chart viewBox={ "0 0 " (W) " " (H) } role="img" preserveAspectRatio="xMidYMid meet"
            aria-label={ "Validations per day: " (total) " in " (days.len()) " days" } {
            @for (v, frac) in ticks(scale_max) {
                @let y = TOP + plot_h - frac * plot_h;
                line.grid x1=(LEFT) x2=(W - 6.0) y1=(y) y2=(y) {}
                text.axis x=(LEFT - 6.0) y=(y + 4.0) text-anchor="end" { (v) }
            }
            @for (i, d) in days.iter().enumerate() {
                @let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
                g {
                    title { (d.date) ": " (d.total) " validations, " (d.valid) " valid" }
                    rect.bar-total x=(x) y=(y_of(d.total)) width=(bar)
                        height=(TOP + plot_h - y_of(d.total)) {}
                    rect.bar-valid x=(x) y=(y_of(d.valid)) width=(bar)
                        height=(TOP + plot_h - y_of(d.valid)) {}
                }
            }
            @if let (Some(first), Some(last)) = (days.first(), days.last()) {
                text.axis x=(LEFT) y=(H - 6.0) text-anchor="start" { (label(first)) }
                @if days.len() > 2 {
                    @let mid = &days[days.len() / 2];
                    text.axis x=(LEFT + plot_w / 2.0) y=(H - 6.0) text-anchor="middle" { (label(mid)) }
                }
                text.axis x=(W - 6.0) y=(H - 6.0) text-anchor="end" { (label(last)) }
            }
        }
        div.small.text-muted.mt-1 {
            span.legend.legend-total {} " all validations "
            span.legend.legend-valid.ms-2 {} " valid"
        }
    }
}

/// Axis labels: 0, the top, and the middle when it is a whole number.
fn ticks(top: i64) -> Vec<(i64, f64)> {
    let mut t = vec![(0, 0.0), (top, 1.0)];
    if top % 2 == 0 {
        t.push((top / 2, 0.5));
    }
    t
}

/// `v` rounded up to 1, 2 or 5 times a power of ten, so the axis labels
/// read as round numbers.
fn tidy_ceiling(v: i64) -> i64 {
    let mut step = 1;
    while step * 10 <= v {
        step *= 10;
    }
    for m in [1, 2, 5, 10] {
        if step * m >= v {
            return step * m;
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tidy_axis() {
        assert_eq!(tidy_ceiling(1), 1);
        assert_eq!(tidy_ceiling(3), 5);
        assert_eq!(tidy_ceiling(11), 20);
        assert_eq!(tidy_ceiling(100), 100);
        assert_eq!(tidy_ceiling(101), 200);
    }
}
