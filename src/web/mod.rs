//! Shared HTTP plumbing that knows no feature: page context, CSRF, flash messages, security
//! headers, request ids and metrics, error pages, pagination, static files.

pub mod assets;
pub mod chart;
pub mod csrf;
pub mod errors;
pub mod flash;
pub mod metrics;
pub mod observe;

use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use askama::Template;

use crate::error::{AppError, FieldErrors};
pub use crate::i18n::Locale;
pub use crate::pagination::{PageQuery, Paginated};
pub use csrf::{CsrfExpected, CsrfForm, CsrfMultipart};
pub use flash::{Flash, FlashLevel};

/// Cookie names.
pub const SESSION_COOKIE: &str = "hd_sid";
pub const VISITOR_COOKIE: &str = "hd_vid";
pub const LANG_COOKIE: &str = "hd_lang";
pub const FLASH_COOKIE: &str = "hd_flash";

/// Largest urlencoded form body accepted (larger → 413).
pub const FORM_LIMIT: usize = 64 * 1024;

/// The signed-in user as the layout needs it (menus by role).
#[derive(Debug, Clone)]
pub struct NavUser {
    pub id: i64,
    pub handle: String,
    pub display_name: String,
    pub roles: Vec<String>,
    pub avatar_url: Option<String>,
    pub email_verified: bool,
}

/// The first letter of a name, for an avatar placeholder.
pub fn initial(name: &str) -> String {
    name.chars()
        .next()
        .map(|c| c.to_uppercase().to_string())
        .unwrap_or_default()
}

impl NavUser {
    pub fn initial(&self) -> String {
        initial(&self.display_name)
    }
}

/// What every page template gets: language, CSRF token, the user, a flash message.
#[derive(Debug, Clone)]
pub struct PageCtx {
    pub locale: Locale,
    pub csrf: String,
    pub user: Option<NavUser>,
    pub flash: Option<Flash>,
    /// Current path and query, for the language switch's return address.
    pub path: String,
    pub request_id: String,
    /// The platform's time zone: times show in it.
    pub tz: chrono_tz::Tz,
}

impl PageCtx {
    pub fn t<'a>(&self, key: &'a str) -> std::borrow::Cow<'a, str> {
        crate::i18n::t(self.locale, key)
    }
    pub fn tf(&self, key: &str, name: &str, value: &str) -> String {
        crate::i18n::tf(self.locale, key, &[(name, value)])
    }
    pub fn has_role(&self, role: &str) -> bool {
        self.user
            .as_ref()
            .is_some_and(|u| u.roles.iter().any(|r| r == role))
    }
    pub fn is_staff(&self) -> bool {
        self.has_role("moderator") || self.has_role("admin")
    }
    pub fn lang(&self) -> &'static str {
        self.locale.html_lang()
    }
    pub fn is_en(&self) -> bool {
        self.locale == Locale::En
    }
    /// Translated message for a field's first error, if any.
    pub fn field_error(&self, errors: &FieldErrors, field: &str) -> Option<String> {
        errors
            .first(field)
            .map(|code| self.t(&format!("validation.{code}")).into_owned())
    }
    /// "Page 2 / 5" for a paginated list.
    pub fn page_label<T>(&self, list: &Paginated<T>) -> String {
        self.tf(
            "pager.page",
            "page",
            &format!("{} / {}", list.page, list.pages()),
        )
    }
    pub fn money(&self, fen: &i64) -> String {
        crate::i18n::money(*fen)
    }
    /// `money` for computed amounts (method results rather than fields).
    pub fn amount(&self, fen: i64) -> String {
        crate::i18n::money(fen)
    }
    /// A stored (UTC) time as "2026-11-30 17:05" in the platform's time zone.
    pub fn time(&self, t: &chrono::NaiveDateTime) -> String {
        use chrono::{Datelike, TimeZone, Timelike};
        // "%Y-%m-%d %H:%M" without chrono's format-string interpreter (it showed in profiles of
        // pages that list many times).
        let l = self.tz.from_utc_datetime(t);
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}",
            l.year(),
            l.month(),
            l.day(),
            l.hour(),
            l.minute()
        )
    }
}

/// The request id given by [`observe::middleware`].
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

pub fn request_id(req: &HttpRequest) -> String {
    req.extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default()
}

/// Renders a template as a 200 HTML page.
pub fn render<T: Template>(tpl: &T) -> Result<HttpResponse, AppError> {
    render_status(actix_web::http::StatusCode::OK, tpl)
}

pub fn render_status<T: Template>(
    status: actix_web::http::StatusCode,
    tpl: &T,
) -> Result<HttpResponse, AppError> {
    let body = tpl.render().map_err(AppError::internal)?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body))
}

/// A 303 redirect (after a POST, or to a page).
pub fn redirect(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// A 303 redirect that shows a flash message on the next page.
pub fn redirect_flash(location: &str, level: FlashLevel, key: &str) -> HttpResponse {
    let mut resp = redirect(location);
    flash::set(&mut resp, level, key);
    resp
}

/// Only local paths are accepted as a return address (no open redirects).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".to_string(),
    }
}

/// Client address: the peer address, or the proxy-given one when the proxy is trusted.
pub fn client_ip(req: &HttpRequest, trust_proxy: bool) -> String {
    let info = req.connection_info();
    if trust_proxy {
        if let Some(ip) = info.realip_remote_addr() {
            return strip_port(ip);
        }
    }
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".to_string())
}

fn strip_port(addr: &str) -> String {
    addr.parse::<std::net::SocketAddr>()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| addr.to_string())
}

/// Whether cookies must carry `Secure`: forced by config, or the request came over https.
pub fn is_secure(req: &HttpRequest, force: bool) -> bool {
    force || req.connection_info().scheme() == "https"
}

/// Builds a cookie with the project's defaults: HttpOnly, SameSite=Lax, Path=/.
pub fn cookie<'a>(
    name: &'a str,
    value: String,
    secure: bool,
    max_age: Option<actix_web::cookie::time::Duration>,
) -> actix_web::cookie::Cookie<'a> {
    let mut c = actix_web::cookie::Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(actix_web::cookie::SameSite::Lax)
        .secure(secure)
        .finish();
    if let Some(age) = max_age {
        c.set_max_age(age);
    }
    c
}

/// A cookie that removes `name`.
pub fn removal_cookie(name: &str) -> actix_web::cookie::Cookie<'_> {
    let mut c = actix_web::cookie::Cookie::build(name, "")
        .path("/")
        .http_only(true)
        .same_site(actix_web::cookie::SameSite::Lax)
        .finish();
    c.make_removal();
    c
}

/// A stored file (content type, bytes, sha256, private) as a response. Private files are
/// marked so that shared caches do not keep them.
pub fn media_response(
    (content_type, bytes, sha, private): (String, Vec<u8>, String, bool),
) -> HttpResponse {
    let cache = if private {
        "private, max-age=3600"
    } else {
        "public, max-age=86400"
    };
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Cache-Control", cache))
        .insert_header(("ETag", format!("\"{}\"", &sha[..16.min(sha.len())])))
        .insert_header(("Content-Disposition", "inline"))
        .body(bytes)
}

/// The body of a POST form that carries nothing but its CSRF token.
#[derive(serde::Deserialize)]
pub struct Empty {}

/// Runs blocking work (database, argon2) off the async workers.
pub async fn blocking<T, F>(f: F) -> Result<T, AppError>
where
    F: FnOnce() -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    actix_web::web::block(f)
        .await
        .map_err(|e| AppError::Internal(format!("blocking task failed: {e}")))?
}

/// Shared application state handed to every handler.
pub struct AppState {
    pub pool: crate::db::Pool,
    pub settings: crate::config::Settings,
    /// Server secret (CSRF tokens).
    pub secret: Vec<u8>,
    pub clock: crate::clock::Clock,
    pub search_stats: crate::catalog::search::SearchStats,
    /// The product page's star counts and rating pages, by "product:page"; cleared by every
    /// new rating or reply on this node.
    pub product_ratings: crate::cache::Ttl<std::sync::Arc<crate::ratings::service::ProductRatings>>,
    /// One permit per pooled connection, taken by [`db`] before it goes to the blocking pool.
    /// The pool's own wait is not fair: a thread that has waited for a connection can lose it
    /// to newer arrivals again and again, and under 64 connections' load single requests on
    /// PostgreSQL waited 0.5–3.5 s while the median was 9 ms. This semaphore queues requests
    /// first come, first served, and on the async side, so no blocking thread parks on the
    /// pool.
    pub db_turns: tokio::sync::Semaphore,
    /// SQLite's group-commit writer ([`db_write`]); None on PostgreSQL.
    pub writer: Option<crate::db::writer::Writer>,
}

impl AppState {
    pub fn conn(&self) -> Result<crate::db::PooledConn, AppError> {
        Ok(self.pool.get()?)
    }
}

pub type State = actix_web::web::Data<AppState>;

/// Runs a unit of database work on the blocking pool with a pooled connection.
pub async fn db<T, F>(state: &State, f: F) -> Result<T, AppError>
where
    F: FnOnce(&mut crate::db::DbConn, &AppState) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    // In arrival order: see `AppState::db_turns`.
    let _turn = state
        .db_turns
        .acquire()
        .await
        .map_err(|e| AppError::Internal(format!("database turns closed: {e}")))?;
    let st = state.clone();
    blocking(move || {
        let mut conn = st.conn()?;
        f(&mut conn, &st)
    })
    .await
}

/// Like [`db`] for the busiest writes (cart, checkout). On SQLite the work runs on the
/// group-commit writer ([`crate::db::writer`]): with other requests' writes in one transaction,
/// each in its own savepoint, and the result comes back once that transaction committed. `f`
/// must do its writes in [`crate::db::write_tx`] (it becomes the savepoint) and must not wait for
/// anything outside the database. On PostgreSQL it runs as [`db`] does.
pub async fn db_write<T, F>(state: &State, f: F) -> Result<T, AppError>
where
    F: FnOnce(&mut crate::db::DbConn, &AppState) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    match &state.writer {
        Some(writer) => {
            let st = state.clone();
            writer.run(move |c| f(c, &st)).await
        }
        None => db(state, f).await,
    }
}

/// Like [`db`] for public pages whose reads are a few index lookups (storefront, product
/// page); `f` must not write. On SQLite:
/// - the page's queries run in one read transaction. Each statement outside a transaction takes
///   and drops SQLite's shared lock and a WAL read mark itself (a mutex shared by every
///   connection to the file, and `fcntl` calls): with six queries that locking was a third of
///   a product page's CPU in `perf`, threads queueing on that mutex. One transaction takes them
///   once, and the page reads one consistent snapshot.
/// - when a pooled connection is free at once, they run right here on the async worker instead
///   of on the blocking pool: a read in WAL mode never waits for a writer and these take tens of
///   microseconds, less than handing the work to another thread and back (measured: CPU per
///   product page 82 → 66 µs, storefront 61 → 46 µs). A busy pool falls back to the blocking
///   pool, so the worker never waits for a connection.
///
/// PostgreSQL runs as [`db`] does: its queries are network round trips, which must not block the
/// worker, and a transaction there would cost two more round trips.
pub async fn db_read<T, F>(state: &State, f: F) -> Result<T, AppError>
where
    F: FnOnce(&mut crate::db::DbConn, &AppState) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    let read_tx =
        |c: &mut crate::db::DbConn, st: &AppState, f: F| crate::db::read_tx(c, |c| f(c, st));
    let sqlite =
        crate::db::Backend::of_url(&state.settings.database_url) == crate::db::Backend::Sqlite;
    if let Some(mut conn) = sqlite.then(|| state.pool.try_get()).flatten() {
        return read_tx(&mut conn, state, f);
    }
    db(state, move |c, st| read_tx(c, st, f)).await
}

/// A CSV download streamed chunk by chunk, so memory stays flat for any number of rows:
/// `header`, then `chunk(conn, cursor)` until it returns no next cursor (the first call gets
/// None). Each chunk runs on the blocking pool; a failure ends the download and is logged.
pub fn csv_stream<F>(state: State, name: &str, header: Vec<u8>, chunk: F) -> HttpResponse
where
    F: Fn(&mut crate::db::DbConn, Option<i64>) -> Result<(Vec<u8>, Option<i64>), AppError>
        + Send
        + Sync
        + 'static,
{
    let chunk = std::sync::Arc::new(chunk);
    let first = futures_util::stream::once(async move {
        Ok::<_, actix_web::Error>(actix_web::web::Bytes::from(header))
    });
    // State: Some(cursor) while there may be more; None when done.
    let rest = futures_util::stream::unfold(Some(None::<i64>), move |cursor| {
        let (state, chunk) = (state.clone(), chunk.clone());
        async move {
            let before = cursor?;
            match db(&state, move |c, _| chunk(c, before)).await {
                Ok((bytes, next)) => Some((Ok(actix_web::web::Bytes::from(bytes)), next.map(Some))),
                Err(e) => {
                    tracing::error!(error = %e, "CSV export failed");
                    Some((
                        Err(actix_web::error::ErrorInternalServerError("export failed")),
                        None,
                    ))
                }
            }
        }
    });
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{name}\""),
        ))
        .streaming(futures_util::StreamExt::chain(first, rest))
}
