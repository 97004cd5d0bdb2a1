//! Server-side sessions and the current-user extractor.
//!
//! The cookie holds a random token; the database keeps only its SHA-256, so a leaked database
//! does not leak sessions. Sessions end at logout, at a password reset, after the idle timeout
//! and after the absolute timeout. The middleware resolves the session once per request and
//! leaves the [`Viewer`], the page context and the expected CSRF token in the request.

use actix_web::body::MessageBody;
use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest};
use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::model::Role;
use crate::db::schema::{sessions, users};
use crate::db::{write_tx, DbConn};
use crate::error::AppError;
use crate::i18n::Locale;
use crate::web::{self, csrf, CsrfExpected, NavUser, PageCtx};

/// A random 256-bit token, hex-encoded. From the thread's CSPRNG (ChaCha, seeded and
/// periodically reseeded from the OS), not a `getrandom` call per token: every first visit
/// makes one.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The signed-in user of a request.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub id: i64,
    pub session_id: i64,
    pub email: String,
    pub handle: String,
    pub display_name: String,
    pub roles: Vec<Role>,
    pub locale: Option<Locale>,
    pub email_verified: bool,
    pub avatar_media_id: Option<i64>,
    /// The second factor of this session.
    pub mfa: Mfa,
}

/// A session's second factor: the user has none, has one not yet given, or gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mfa {
    #[default]
    Off,
    Pending,
    Verified,
}

impl Mfa {
    pub fn parse(s: &str) -> Mfa {
        match s {
            "pending" => Mfa::Pending,
            "verified" => Mfa::Verified,
            _ => Mfa::Off,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Mfa::Off => "off",
            Mfa::Pending => "pending",
            Mfa::Verified => "verified",
        }
    }
}

impl SessionUser {
    pub fn has_role(&self, role: Role) -> bool {
        role == Role::Buyer
            || self.roles.contains(&role)
            || (role == Role::Moderator && self.roles.contains(&Role::Admin))
    }
}

/// Who is asking: the current-user extractor. Permission checks are its named methods.
#[derive(Debug, Clone, Default)]
pub struct Viewer {
    pub user: Option<SessionUser>,
    /// The visitor id from its cookie (an anonymous visitor's cart is kept under it).
    pub visitor: String,
    pub ip: String,
    pub user_agent: String,
    /// A session that gave its password but not yet its second factor: it reaches nothing
    /// but the code form.
    pub pending: Option<SessionUser>,
    /// The user holds moderator or admin roles that are set aside for this session because
    /// the platform requires a second factor (HAODIAN_REQUIRE_MFA=1) it has not given.
    pub mfa_missing: bool,
}

impl Viewer {
    pub fn require_user(&self) -> Result<&SessionUser, AppError> {
        self.user.as_ref().ok_or(AppError::Unauthenticated)
    }
    /// The user when they hold `role` (admins hold moderator too). A moderator or admin
    /// whose session still owes the required second factor is told so.
    pub fn require_role(&self, role: Role) -> Result<&SessionUser, AppError> {
        let u = self.require_user()?;
        if u.has_role(role) {
            Ok(u)
        } else if self.mfa_missing && matches!(role, Role::Moderator | Role::Admin) {
            Err(AppError::Forbidden("mfa.required"))
        } else {
            Err(AppError::Forbidden("error.403.body"))
        }
    }
}

impl actix_web::FromRequest for Viewer {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(Ok(req
            .extensions()
            .get::<Viewer>()
            .cloned()
            .unwrap_or_default()))
    }
}

/// Creates a session for a user and returns its cookie token.
pub fn create(
    conn: &mut DbConn,
    user_id: i64,
    absolute: std::time::Duration,
    ip: &str,
    user_agent: &str,
    mfa: Mfa,
) -> Result<String, AppError> {
    let token = random_token();
    let now = Utc::now().naive_utc();
    let expires = now + chrono::Duration::from_std(absolute).map_err(AppError::internal)?;
    diesel::insert_into(sessions::table)
        .values((
            sessions::token_hash.eq(hash_token(&token)),
            sessions::user_id.eq(user_id),
            sessions::created_at.eq(now),
            sessions::last_seen_at.eq(now),
            sessions::expires_at.eq(expires),
            sessions::ip.eq(ip),
            sessions::user_agent.eq(user_agent.chars().take(300).collect::<String>()),
            sessions::mfa.eq(mfa.as_str()),
        ))
        .execute(conn)?;
    Ok(token)
}

/// Ends one session by its cookie token.
pub fn revoke_token(conn: &mut DbConn, token: &str) -> Result<(), AppError> {
    diesel::delete(sessions::table.filter(sessions::token_hash.eq(hash_token(token))))
        .execute(conn)?;
    Ok(())
}

/// Ends every session of a user, optionally keeping one.
pub fn revoke_all(conn: &mut DbConn, user_id: i64, keep: Option<i64>) -> Result<usize, AppError> {
    let q = sessions::table.filter(sessions::user_id.eq(user_id));
    Ok(match keep {
        Some(id) => diesel::delete(q.filter(sessions::id.ne(id))).execute(conn)?,
        None => diesel::delete(q).execute(conn)?,
    })
}

pub fn count_for_user(conn: &mut DbConn, user_id: i64) -> Result<i64, AppError> {
    Ok(sessions::table
        .filter(sessions::user_id.eq(user_id))
        .count()
        .get_result(conn)?)
}

type SessionRow = (
    i64,
    NaiveDateTime,
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<NaiveDateTime>,
    Option<i64>,
    String,
    Option<String>,
);

/// A user's roles as a JSON array: a sub-select of the session lookup's statement, correlated
/// with its `users` row (see [`crate::db::json_rows`]), so that resolving a session is one
/// statement (one round trip on PostgreSQL) on every request.
pub struct UserRoles;

impl crate::db::json_rows::JsonSql for UserRoles {
    const POSTGRES: &'static [&'static str] =
        &["(SELECT json_agg(role)::text FROM user_roles WHERE user_roles.user_id = users.id)"];
    const SQLITE: &'static [&'static str] =
        &["(SELECT json_group_array(role) FROM user_roles WHERE user_roles.user_id = users.id)"];
}

/// How often a session's last-seen time is written (idle timeouts are far longer).
const TOUCH_EVERY: i64 = 60;

/// Resolves a cookie token to its live session's user, enforcing both timeouts, without
/// writing: the flag says the session is due a [`touch`] (at most once a minute, to spare
/// writes).
pub fn find(
    conn: &mut DbConn,
    token: &str,
    idle: std::time::Duration,
    now: NaiveDateTime,
) -> Result<Option<(SessionUser, bool)>, AppError> {
    use crate::db::json_rows::{self, JsonRows};
    let idle_cutoff = now - chrono::Duration::from_std(idle).map_err(AppError::internal)?;
    let hash = hash_token(token);
    let row: Option<SessionRow> = crate::per_backend!(conn, |c| sessions::table
        .inner_join(users::table)
        .filter(sessions::token_hash.eq(&hash))
        .filter(sessions::expires_at.gt(now))
        .filter(sessions::last_seen_at.gt(idle_cutoff))
        .select((
            sessions::id,
            sessions::last_seen_at,
            users::id,
            users::email,
            users::handle,
            users::display_name,
            users::locale,
            users::email_verified_at,
            users::avatar_media_id,
            sessions::mfa,
            JsonRows::<UserRoles, 0>::new([]),
        ))
        .first(c)
        .optional())?;
    let Some((
        sid,
        last_seen,
        uid,
        email,
        handle,
        display_name,
        locale,
        verified,
        avatar,
        mfa,
        roles,
    )) = row
    else {
        return Ok(None);
    };
    let roles = json_rows::parse::<String>(roles.as_deref())?
        .iter()
        .filter_map(|r| Role::parse(r))
        .collect();
    let user = SessionUser {
        id: uid,
        session_id: sid,
        email,
        handle,
        display_name,
        roles,
        locale: locale.as_deref().and_then(Locale::parse),
        email_verified: verified.is_some(),
        avatar_media_id: avatar,
        mfa: Mfa::parse(&mfa),
    };
    Ok(Some((
        user,
        now - last_seen > chrono::Duration::seconds(TOUCH_EVERY),
    )))
}

/// Records that the session was used now (its idle timeout starts again).
pub fn touch(conn: &mut DbConn, session_id: i64, now: NaiveDateTime) -> Result<(), AppError> {
    write_tx(conn, |c| {
        diesel::update(sessions::table.find(session_id))
            .set(sessions::last_seen_at.eq(now))
            .execute(c)
    })?;
    Ok(())
}

/// [`find`] and, when due, [`touch`] on one connection.
pub fn lookup(
    conn: &mut DbConn,
    token: &str,
    idle: std::time::Duration,
) -> Result<Option<SessionUser>, AppError> {
    let now = Utc::now().naive_utc();
    match find(conn, token, idle, now)? {
        Some((user, due)) => {
            if due {
                touch(conn, user.session_id, now)?;
            }
            Ok(Some(user))
        }
        None => Ok(None),
    }
}

fn skip_session(path: &str) -> bool {
    path.starts_with("/static/")
        || path == "/healthz"
        || path == "/metrics"
        || path.starts_with("/media/")
}

/// Resolves the session, the visitor id, the language and the CSRF token for every page
/// request, and maintains the cookies that carry them.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if skip_session(req.path()) {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    let Some(state) = req.app_data::<web::State>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let http = req.request().clone();
    let secure = web::is_secure(&http, state.settings.cookie_secure);
    let token = http
        .cookie(web::SESSION_COOKIE)
        .map(|c| c.value().to_string());
    let user = match token.clone() {
        Some(t) if t.len() == 64 => {
            // A read on every request (on SQLite without a trip to the blocking pool when a
            // connection is free); the write, once a minute per session, goes its own way.
            let now = Utc::now().naive_utc();
            let found = match web::db_read(&state, move |c, st| {
                find(c, &t, st.settings.session_idle, now)
            })
            .await
            {
                Ok(Some((u, true))) => {
                    let sid = u.session_id;
                    web::db(&state, move |c, _| touch(c, sid, now))
                        .await
                        .map(|()| Some(u))
                }
                Ok(found) => Ok(found.map(|(u, _)| u)),
                Err(e) => Err(e),
            };
            match found {
                Ok(u) => u,
                Err(e) => {
                    drop(http);
                    return Ok(req.error_response(e).map_into_right_body());
                }
            }
        }
        _ => None,
    };
    // A session waiting for its second factor is nobody yet (but not stale either).
    let (mut user, pending) = match user {
        Some(u) if u.mfa == Mfa::Pending => (None, Some(u)),
        u => (u, None),
    };
    // Where the platform requires a second factor, a session that has not given one holds no
    // moderator or admin role at all: every check, in handlers and services alike, sees a
    // plain account.
    let mut mfa_missing = false;
    if let Some(u) = user.as_mut() {
        if state.settings.require_mfa && u.mfa != Mfa::Verified {
            let before = u.roles.len();
            u.roles
                .retain(|r| !matches!(r, Role::Moderator | Role::Admin));
            mfa_missing = u.roles.len() != before;
        }
    }
    let stale_session = token.is_some() && user.is_none() && pending.is_none();
    let existing_vid = http
        .cookie(web::VISITOR_COOKIE)
        .map(|c| c.value().to_string())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()));
    let new_vid = existing_vid.is_none().then(random_token);
    let vid = existing_vid.or_else(|| new_vid.clone()).unwrap_or_default();
    let csrf = match (user.is_some() || pending.is_some(), &token) {
        (true, Some(t)) => csrf::token_for(&state.secret, &format!("s:{t}")),
        _ => csrf::token_for(&state.secret, &format!("v:{vid}")),
    };
    let locale = user
        .as_ref()
        .and_then(|u| u.locale)
        .unwrap_or_else(|| web::observe::detect_locale(&http));
    let flash_cookie = http.cookie(web::FLASH_COOKIE).is_some();
    let flash = http
        .cookie(web::FLASH_COOKIE)
        .and_then(|c| web::flash::parse(c.value()));
    let nav = user.as_ref().map(|u| NavUser {
        id: u.id,
        handle: u.handle.clone(),
        display_name: u.display_name.clone(),
        roles: u.roles.iter().map(|r| r.as_str().to_string()).collect(),
        avatar_url: u.avatar_media_id.map(|m| format!("/media/{m}")),
        email_verified: u.email_verified,
    });
    let ctx = PageCtx {
        locale,
        csrf: csrf.clone(),
        user: nav,
        flash: flash.clone(),
        path: http
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into()),
        request_id: web::request_id(&http),
        tz: state.settings.tz,
    };
    let viewer = Viewer {
        user,
        visitor: vid.clone(),
        ip: web::client_ip(&http, state.settings.trust_proxy),
        user_agent: http
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
        pending,
        mfa_missing,
    };
    // No clone of the request may live while the request is routed (actix needs it unique).
    drop(http);
    {
        let mut ext = req.extensions_mut();
        ext.insert(viewer);
        ext.insert(CsrfExpected(csrf));
        ext.insert(ctx);
        if let Some(f) = flash {
            ext.insert(f);
        }
    }
    let mut res = next.call(req).await?;
    let sets =
        |res: &ServiceResponse<_>, name: &str| res.response().cookies().any(|c| c.name() == name);
    if flash_cookie && !sets(&res, web::FLASH_COOKIE) {
        let _ = res
            .response_mut()
            .add_cookie(&web::removal_cookie(web::FLASH_COOKIE));
    }
    if stale_session && !sets(&res, web::SESSION_COOKIE) {
        let _ = res
            .response_mut()
            .add_cookie(&web::removal_cookie(web::SESSION_COOKIE));
    }
    if let Some(v) = new_vid {
        let c = web::cookie(
            web::VISITOR_COOKIE,
            v,
            secure,
            Some(CookieDuration::days(365)),
        );
        let _ = res.response_mut().add_cookie(&c);
    }
    Ok(res.map_into_left_body())
}
