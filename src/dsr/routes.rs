//! The score pages: the merchant's experience score with what to improve first and its
//! 90-day trend, and the moderators' overview of the nightly scoring.

use actix_web::{get, HttpResponse};
use askama::Template;

use super::service::{self, AdminView, DsrItem, JobRun, MerchantView, MetricLine, Snapshot};
use crate::accounts::Viewer;
use crate::error::AppError;
use crate::web::{self, PageCtx, State};

pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(merchant_page).service(admin_page);
}

// ---------- merchant ----------

/// A titled trend chart (inline SVG).
struct Chart {
    title: String,
    svg: String,
}

#[derive(Template)]
#[template(path = "dsr/merchant.html")]
struct MerchantPage {
    ctx: PageCtx,
    v: MerchantView,
    charts: Vec<Chart>,
}

impl MerchantPage {
    fn tr(&self, key: &str, args: &[(&str, &str)]) -> String {
        crate::i18n::tf(self.ctx.locale, key, args)
    }
    fn tier_name(&self, tier: &str) -> String {
        self.ctx.t(&format!("dsr.tier.{tier}")).into_owned()
    }
    fn consequence(&self, tier: &str) -> String {
        self.ctx.t(&format!("dsr.consequence.{tier}")).into_owned()
    }
    /// "Not enough data (12 valid orders, needs 30)".
    fn not_enough(&self, s: &Snapshot) -> String {
        self.tr(
            "dsrpage.not_enough",
            &[
                ("count", &s.valid_orders.to_string()),
                ("min", &self.v.rules.min_valid_orders.to_string()),
            ],
        )
    }
    /// On clearance watch: "5 of 14 consecutive days below 3.2".
    fn low_days(&self, s: &Snapshot) -> String {
        self.tr(
            "dsrpage.low_days",
            &[
                ("days", &s.low_days.to_string()),
                ("max", &self.v.rules.clearance_days.to_string()),
                ("min", &format!("{:.1}", self.v.rules.tier_clearance)),
            ],
        )
    }
    /// "Higher than peers by 12.34%" (or lower, or level).
    fn vs_text(&self, d: &DsrItem) -> String {
        match &d.vs {
            Some(pct) if d.direction != "level" => {
                self.ctx
                    .tf(&format!("dsrpage.vs_{}", d.direction), "pct", pct)
            }
            Some(_) => self.ctx.t("dsrpage.vs_level").into_owned(),
            None => self.ctx.t("dsrpage.vs_none").into_owned(),
        }
    }
    /// (dimension label key, its points, its weight in percent).
    fn dimensions(&self, s: &Snapshot) -> Vec<(String, String, String)> {
        let r = &self.v.rules;
        let points = [s.product_points, s.logistics_points, s.service_points];
        let weights = [r.weight_product, r.weight_logistics, r.weight_service];
        service::DIMENSIONS
            .iter()
            .zip(points.iter().zip(weights))
            .map(|(d, (p, w))| {
                (
                    self.dim_name(d),
                    p.map_or_else(|| "—".to_string(), |p| format!("{p:.2}")),
                    self.ctx
                        .tf("dsrpage.weight", "pct", &format!("{:.0}", w * 100.0)),
                )
            })
            .collect()
    }
    fn dim_name(&self, d: &str) -> String {
        self.ctx.t(&format!("dsr.dim.{d}")).into_owned()
    }
    fn metric_name(&self, m: &MetricLine) -> String {
        self.ctx.t(&format!("dsr.metric.{}", m.name)).into_owned()
    }
    /// The recency-weighted numerator and denominator: "12 / 340" or "12.5 / 340.2".
    fn fraction(&self, m: &MetricLine) -> String {
        format!("{} / {}", number(m.num), number(m.den))
    }
    fn rank(&self, m: &MetricLine) -> String {
        format!("{:.0}%", m.rank)
    }
    fn points(&self, m: &MetricLine) -> String {
        format!("{:.2}", m.points)
    }
    /// The first metric is the one to improve first, when it costs anything at all.
    fn improve_first(&self, i: &usize, m: &MetricLine) -> bool {
        *i == 0 && m.cost > 0.0
    }
}

/// A weighted count: whole numbers without decimals, others with one.
fn number(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

#[get("/merchant/dsr")]
async fn merchant_page(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let v = web::db(&state, move |c, _| service::merchant_view(c, &me)).await?;
    let charts = trend_charts(&ctx, &v.trend);
    web::render(&MerchantPage { ctx, v, charts })
}

/// A field of a snapshot that a trend chart plots.
type Field = fn(&Snapshot) -> Option<f64>;

/// The score and the three DSR numbers over the trend (none without snapshots).
fn trend_charts(ctx: &PageCtx, trend: &[Snapshot]) -> Vec<Chart> {
    if trend.is_empty() {
        return Vec::new();
    }
    let series: [(&str, Field); 4] = [
        ("dsrpage.chart_score", |s| s.score),
        ("dsr.described", |s| s.described),
        ("dsr.service", |s| s.service),
        ("dsr.logistics", |s| s.logistics),
    ];
    series
        .iter()
        .map(|(key, get)| {
            let title = ctx.t(key).into_owned();
            let points: Vec<(&str, Option<f64>)> =
                trend.iter().map(|s| (s.day.as_str(), get(s))).collect();
            let svg = web::chart::line(&title, &points);
            Chart { title, svg }
        })
        .collect()
}

// ---------- moderators ----------

/// One category's histogram.
struct Histogram {
    category: String,
    svg: String,
    scored: i64,
    unrated: i64,
}

#[derive(Template)]
#[template(path = "dsr/admin.html")]
struct AdminPage {
    ctx: PageCtx,
    v: AdminView,
    histograms: Vec<Histogram>,
}

impl AdminPage {
    fn counts(&self, h: &Histogram) -> String {
        crate::i18n::tf(
            self.ctx.locale,
            "dsrpage.counts",
            &[
                ("scored", &h.scored.to_string()),
                ("unrated", &h.unrated.to_string()),
            ],
        )
    }
    fn score(&self, s: &f64) -> String {
        format!("{s:.2}")
    }
    fn low_days(&self, n: &i64) -> String {
        format!("{n} / {}", self.v.clearance_days)
    }
    fn run_status(&self, r: &JobRun) -> String {
        self.ctx
            .t(&format!("dsrpage.run.{}", r.status))
            .into_owned()
    }
    fn status_class(&self, r: &JobRun) -> &'static str {
        match r.status.as_str() {
            "done" => "tag ok",
            "failed" => "tag warn",
            _ => "tag",
        }
    }
    fn duration(&self, r: &JobRun) -> String {
        r.seconds().map_or_else(
            || "—".to_string(),
            |s| self.ctx.tf("dsrpage.seconds", "n", &format!("{s:.1}")),
        )
    }
}

#[get("/admin/dsr")]
async fn admin_page(state: State, ctx: PageCtx, viewer: Viewer) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let v = web::db(&state, move |c, _| service::admin_view(c, &me)).await?;
    let labels: Vec<String> = (0..service::BUCKETS)
        .map(|i| {
            let from = 3.0 + 0.2 * i as f64;
            format!("{from:.1}–{:.1}", from + 0.2)
        })
        .collect();
    let histograms = v
        .distribution
        .iter()
        .map(|d| {
            let series: Vec<(String, i64)> = labels
                .iter()
                .cloned()
                .zip(d.buckets.iter().copied())
                .collect();
            let name = match ctx.locale {
                crate::i18n::Locale::ZhCn => &d.category,
                crate::i18n::Locale::En => &d.category_en,
            };
            let title = ctx.tf("dsrpage.histogram_of", "category", name);
            Histogram {
                category: name.clone(),
                svg: web::chart::bars(&title, &series, |n| n.to_string()),
                scored: d.scored,
                unrated: d.unrated,
            }
        })
        .collect();
    web::render(&AdminPage { ctx, v, histograms })
}
