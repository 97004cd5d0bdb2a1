//! `app::build(settings)`: pool, migrations, middleware, every feature's routes, scheduler.
//! Used by `main` and by the tests, which start the real app on port 0.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::middleware::{from_fn, DefaultHeaders};
use actix_web::{web as aw, App, HttpResponse, HttpServer};
use chrono::Utc;
use diesel::prelude::*;

use crate::config::Settings;
use crate::db::schema::app_secrets;
use crate::db::{self, write_tx, DbConn, Pool};
use crate::error::AppError;
use crate::jobs::{self, Job};
use crate::mail::{self, Transport};
use crate::web::{self, metrics::Metrics, AppState};

/// Security headers on every response. The CSP allows only our own files: no inline script or
/// style, no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("Content-Security-Policy", CSP))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "strict-origin-when-cross-origin"))
        .add((
            "Permissions-Policy",
            "camera=(), microphone=(), geolocation=(), payment=()",
        ))
        .add(("Cross-Origin-Opener-Policy", "same-origin"))
}

/// The jobs `serve` runs on its timer and `haodian jobs run` runs once.
pub fn jobs() -> Vec<Job> {
    vec![
        Job {
            name: "outbox.send",
            every_secs: 10,
            run: |ctx| {
                let r = mail::drain(ctx.conn, ctx.transport, &ctx.settings.mail_from, 500)?;
                Ok(format!(
                    "sent={} retried={} dead={}",
                    r.sent, r.retried, r.dead
                ))
            },
        },
        Job {
            name: "orders.expire",
            every_secs: 60,
            run: |ctx| {
                let now = Utc::now().naive_utc();
                let n = crate::orders::service::cancel_expired(ctx.conn, now, 1000)?;
                Ok(format!("cancelled={n}"))
            },
        },
        Job {
            name: "orders.auto_confirm",
            every_secs: 3600,
            run: |ctx| {
                let now = Utc::now().naive_utc();
                let s = ctx.settings;
                let n = crate::orders::service::auto_confirm(
                    ctx.conn,
                    now,
                    s.order_auto_confirm_days,
                    s.order_auto_confirm_shipped_days,
                    5000,
                )?;
                Ok(format!("confirmed={n}"))
            },
        },
        Job {
            name: "refunds.auto_approve",
            every_secs: 300,
            run: |ctx| {
                let now = Utc::now().naive_utc();
                let n = crate::orders::refunds::auto_approve(ctx.conn, now, 1000)?;
                Ok(format!("approved={n}"))
            },
        },
        Job {
            name: "penalties.lift",
            every_secs: 60,
            run: |ctx| {
                let now = Utc::now().naive_utc();
                let n = crate::governance::violations::lift_expired(ctx.conn, now, 1000)?;
                Ok(format!("ended={n}"))
            },
        },
        Job {
            name: "dsr.nightly",
            every_secs: 900,
            run: |ctx| {
                let now = Utc::now().naive_utc();
                crate::dsr::job::nightly(ctx.conn, ctx.settings, now, &jobs::node_name())
            },
        },
        Job {
            name: "housekeeping",
            every_secs: 3600,
            run: |ctx| {
                let mut detail =
                    crate::accounts::service::housekeeping(ctx.conn, ctx.settings.session_idle)?;
                let pruned = jobs::prune_runs(
                    ctx.conn,
                    &[
                        "outbox.send",
                        "orders.expire",
                        "orders.auto_confirm",
                        "refunds.auto_approve",
                        "dsr.nightly",
                        "housekeeping",
                    ],
                    2,
                )?;
                detail.push_str(&format!(" job_runs={pruned}"));
                Ok(detail)
            },
        },
    ]
}

/// Opens the pool and migrates the database.
pub fn open_database(settings: &Settings) -> Result<Pool, AppError> {
    open_pool(settings, 1)
}

/// The pool of a one-shot command (`dsr score`, `seed`, `user create` …): no idle minimum, so
/// no connection is being opened in the background when the command exits.
pub fn open_command_database(settings: &Settings) -> Result<Pool, AppError> {
    open_pool(settings, 0)
}

fn open_pool(settings: &Settings, min_idle: u32) -> Result<Pool, AppError> {
    let pool = db::build_pool_idle(
        &settings.database_url,
        settings.pool_size,
        &settings.sqlite_synchronous,
        min_idle,
    )?;
    let mut conn = pool.get()?;
    let n = db::migrate(&mut conn)?;
    if n > 0 {
        tracing::info!(applied = n, "migrations applied");
    }
    Ok(pool)
}

/// The configured secret, or one generated once and kept in the database for every node.
pub fn load_secret(conn: &mut DbConn, settings: &Settings) -> Result<Vec<u8>, AppError> {
    if let Some(s) = &settings.secret {
        return Ok(s.as_bytes().to_vec());
    }
    let generated = crate::accounts::session::random_token();
    write_tx(conn, |c| {
        crate::per_backend!(c, |c| diesel::insert_into(app_secrets::table)
            .values((
                app_secrets::name.eq("csrf"),
                app_secrets::value.eq(&generated),
                app_secrets::created_at.eq(Utc::now().naive_utc()),
            ))
            .on_conflict_do_nothing()
            .execute(c))?;
        let v: String = app_secrets::table
            .find("csrf")
            .select(app_secrets::value)
            .first(c)?;
        Ok::<_, AppError>(v.into_bytes())
    })
}

pub struct BuildOptions {
    pub scheduler: bool,
}

/// A started server.
pub struct Running {
    pub server: actix_web::dev::Server,
    pub port: u16,
    pub state: aw::Data<AppState>,
}

/// Builds and starts the app; must be called inside the actix runtime.
pub async fn build(settings: Settings, opts: BuildOptions) -> Result<Running, AppError> {
    let pool = open_database(&settings)?;
    let secret = load_secret(&mut *pool.get()?, &settings)?;
    let transport = Arc::new(Transport::from_url(&settings.mail_url)?);
    let listener = TcpListener::bind(&settings.bind)
        .map_err(|e| AppError::Internal(format!("cannot listen on {}: {e}", settings.bind)))?;
    let port = listener.local_addr().map_err(AppError::internal)?.port();
    let workers = settings.workers;
    let writer = match crate::db::Backend::of_url(&settings.database_url) {
        crate::db::Backend::Sqlite => Some(crate::db::writer::Writer::start(
            crate::db::Manager::new(&settings.database_url, &settings.sqlite_synchronous),
        )?),
        crate::db::Backend::Postgres => None,
    };
    let state = aw::Data::new(AppState {
        writer,
        db_turns: tokio::sync::Semaphore::new(settings.pool_size as usize),
        pool,
        settings,
        secret,
        clock: crate::clock::Clock::default(),
        search_stats: Default::default(),
        product_ratings: crate::cache::Ttl::new(crate::ratings::service::PRODUCT_RATINGS_TTL),
    });
    let metrics = aw::Data::new(Metrics::default());
    let st = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(st.clone())
            .app_data(metrics.clone())
            .app_data(aw::PayloadConfig::new(web::FORM_LIMIT))
            .app_data(aw::FormConfig::default().limit(web::FORM_LIMIT))
            .wrap(from_fn(crate::accounts::session::middleware))
            .wrap(from_fn(web::errors::middleware))
            .wrap(security_headers())
            .wrap(from_fn(web::observe::middleware))
            .route("/static/{name}", aw::get().to(web::assets::serve))
            .route(
                "/favicon.ico",
                aw::get().to(|| async {
                    HttpResponse::MovedPermanently()
                        .insert_header(("Location", "/static/favicon.svg"))
                        .finish()
                }),
            )
            .configure(crate::site::routes::routes)
            .configure(crate::catalog::routes::public)
            .configure(crate::shops::routes::public)
            .configure(crate::accounts::routes::routes)
            .configure(crate::catalog::routes::routes)
            .configure(crate::shops::routes::routes)
            .configure(crate::orders::routes::routes)
            .configure(crate::ratings::routes::routes)
            .configure(crate::dsr::routes::routes)
            .configure(crate::governance::routes::routes)
            .default_service(aw::to(|| async {
                Err::<HttpResponse, AppError>(AppError::NotFound)
            }))
    })
    .workers(workers)
    .listen(listener)
    .map_err(AppError::internal)?
    .run();
    if opts.scheduler {
        spawn_scheduler(state.clone(), transport);
    }
    Ok(Running {
        server,
        port,
        state,
    })
}

/// Runs due jobs on a timer; a failing pass is logged and the timer goes on.
fn spawn_scheduler(state: aw::Data<AppState>, transport: Arc<Transport>) {
    let node = jobs::node_name();
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(state.settings.scheduler_interval);
        let list = Arc::new(jobs());
        loop {
            tick.tick().await;
            let (st, tr, l, n) = (state.clone(), transport.clone(), list.clone(), node.clone());
            let r = aw::block(move || jobs::run_due(&st.pool, &st.settings, &tr, &l, &n)).await;
            match r {
                Ok(outcomes) => {
                    for o in outcomes.iter().filter(|o| o.result.is_err()) {
                        tracing::error!(job = o.job, period = %o.period, error = ?o.result, "scheduled job failed");
                    }
                }
                Err(e) => tracing::error!(error = %e, "scheduler pass failed"),
            }
        }
    });
}
