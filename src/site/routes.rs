use actix_web::{get, web as aw, HttpRequest, HttpResponse};
use askama::Template;
use diesel::connection::SimpleConnection;

use crate::accounts::{Role, Viewer};
use crate::error::AppError;
use crate::web::{self, metrics::Metrics, PageCtx, State};

pub fn routes(cfg: &mut aw::ServiceConfig) {
    cfg.service(home)
        .service(account_dashboard)
        .service(creator_dashboard)
        .service(admin_dashboard)
        .service(healthz)
        .service(metrics);
}

#[derive(Template)]
#[template(path = "site/home.html")]
struct HomePage {
    ctx: PageCtx,
    shops: Vec<(crate::shops::Shop, String)>,
}

#[get("/")]
async fn home(state: State, ctx: PageCtx) -> Result<HttpResponse, AppError> {
    let shops = web::db(&state, |c, _| crate::shops::service::recent_shops(c, 8)).await?;
    web::render(&HomePage { ctx, shops })
}

/// One dashboard page per role; `area` picks the title and the tiles.
#[derive(Template)]
#[template(path = "site/dashboard.html")]
struct DashboardPage {
    ctx: PageCtx,
    area: &'static str,
    tiles: Vec<(&'static str, &'static str, &'static str)>,
    /// The moderators' queues and today's enforcement (the admin area only).
    overview: Option<crate::governance::violations::Overview>,
}

impl DashboardPage {
    /// `dashboard.<area>.<what>` in the page's language.
    fn text(&self, what: &str) -> String {
        self.ctx
            .t(&format!("dashboard.{}.{what}", self.area))
            .into_owned()
    }
}

fn dashboard(
    ctx: PageCtx,
    area: &'static str,
    tiles: Vec<(&'static str, &'static str, &'static str)>,
) -> Result<HttpResponse, AppError> {
    web::render(&DashboardPage {
        ctx,
        area,
        tiles,
        overview: None,
    })
}

#[get("/account")]
async fn account_dashboard(ctx: PageCtx, viewer: Viewer) -> Result<HttpResponse, AppError> {
    viewer.require_user()?;
    dashboard(
        ctx,
        "account",
        vec![
            ("tile.orders", "tile.orders_body", "/orders"),
            ("address.title", "tile.addresses_body", "/addresses"),
            ("tile.following", "tile.following_body", ""),
            ("tile.settings", "tile.settings_body", "/settings"),
        ],
    )
}

#[get("/creator")]
async fn creator_dashboard(ctx: PageCtx, viewer: Viewer) -> Result<HttpResponse, AppError> {
    viewer.require_role(Role::Creator)?;
    dashboard(
        ctx,
        "creator",
        vec![
            ("tile.showcase", "tile.showcase_body", ""),
            ("tile.commission", "tile.commission_body", ""),
        ],
    )
}

#[get("/admin")]
async fn admin_dashboard(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
) -> Result<HttpResponse, AppError> {
    viewer.require_role(Role::Moderator)?;
    let now = state.clock.now();
    let overview = web::db(&state, move |c, st| {
        crate::governance::violations::overview(c, st.settings.tz, now)
    })
    .await?;
    web::render(&DashboardPage {
        ctx,
        area: "admin",
        overview: Some(overview),
        tiles: vec![
            ("tile.review", "tile.review_body", "/admin/review"),
            (
                "complaint.queue_title",
                "tile.complaints_body",
                "/admin/complaints",
            ),
            (
                "tile.products_admin",
                "tile.products_admin_body",
                "/admin/products",
            ),
            ("tile.shops_admin", "tile.shops_admin_body", "/admin/shops"),
            ("tile.dsr_admin", "tile.dsr_admin_body", "/admin/dsr"),
            (
                "tile.categories",
                "tile.categories_body",
                "/admin/categories",
            ),
            (
                "tile.violations",
                "tile.violations_body",
                "/admin/violations",
            ),
            ("tile.appeals", "tile.appeals_body", "/admin/appeals"),
            ("tile.audit", "tile.audit_body", "/admin/audit"),
            ("tile.rules", "tile.rules_body", "/admin/rules"),
        ],
    })
}

#[get("/healthz")]
async fn healthz(state: State) -> HttpResponse {
    let backend = crate::db::Backend::of_url(&state.settings.database_url).name();
    let ok = web::db(&state, |c, _| Ok(c.batch_execute("SELECT 1")?))
        .await
        .is_ok();
    let body = format!(
        "{{\"status\":\"{}\",\"database\":\"{}\",\"backend\":\"{backend}\"}}",
        if ok { "ok" } else { "unavailable" },
        if ok { "ok" } else { "down" }
    );
    let mut resp = if ok {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    resp.content_type("application/json")
        .insert_header(("Cache-Control", "no-store"))
        .body(body)
}

#[get("/metrics")]
async fn metrics(
    req: HttpRequest,
    state: State,
    m: aw::Data<Metrics>,
) -> Result<HttpResponse, AppError> {
    if let Some(token) = &state.settings.metrics_token {
        let given = req
            .headers()
            .get("Authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !web::csrf::ct_eq(given, token) {
            return Err(AppError::Forbidden("error.403.body"));
        }
    }
    let pool = state.pool.state();
    let depth = web::db(&state, |c, _| crate::mail::depth(c))
        .await
        .unwrap_or(-1);
    let gauges = [
        (
            "haodian_db_pool_connections",
            "Open database connections.",
            pool.connections as f64,
        ),
        (
            "haodian_db_pool_idle",
            "Idle database connections.",
            pool.idle_connections as f64,
        ),
        (
            "haodian_db_pool_max",
            "Database pool size.",
            state.pool.max_size() as f64,
        ),
        (
            "haodian_mail_outbox_depth",
            "Emails waiting to be sent (-1: unknown).",
            depth as f64,
        ),
    ];
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(m.render(&gauges)))
}
