//! Settings from the environment, parsed and validated once at start. Secrets are never printed
//! (`Debug` redacts them).

use std::time::Duration;

use crate::error::AppError;

#[derive(Clone)]
pub struct Settings {
    /// `postgres://…` or a SQLite path / `sqlite://path`. Default `sqlite://haodian.db`.
    pub database_url: String,
    pub bind: String,
    /// Public base URL used in email links, e.g. `https://haodian.example`.
    pub base_url: String,
    /// Server secret for CSRF tokens; when unset one is generated and kept in the database so
    /// every node shares it.
    pub secret: Option<String>,
    /// `smtp://…`, `smtps://…`, `file://DIR` or `log`.
    pub mail_url: String,
    pub mail_from: String,
    pub tz: chrono_tz::Tz,
    pub pool_size: u32,
    pub workers: usize,
    pub sqlite_synchronous: String,
    pub session_idle: Duration,
    pub session_absolute: Duration,
    /// Always mark cookies Secure (otherwise only when the request came over https).
    pub cookie_secure: bool,
    /// Trust X-Forwarded-For / Forwarded for the client address (only behind your own proxy).
    pub trust_proxy: bool,
    pub login_max_failures_account: i64,
    pub login_max_failures_ip: i64,
    pub login_base_delay_secs: i64,
    pub login_max_delay_secs: i64,
    pub max_avatar_bytes: usize,
    pub scheduler_interval: Duration,
    pub log_json: bool,
    /// Optional bearer token required for `/metrics`.
    pub metrics_token: Option<String>,
    /// At most this many authorized accounts per shop.
    pub authorized_max: i64,
    /// Followers an account needs before a shop may authorize it.
    pub authorized_min_followers: i64,
    /// Days after which an authorization may be revoked.
    pub authorized_min_days: i64,
    /// Minutes an order may stay unpaid before the job cancels it.
    pub order_pay_minutes: i64,
    /// Days after a delivery scan before an order is confirmed automatically.
    pub order_auto_confirm_days: i64,
    /// Days after shipping (with no delivery scan) before an order is confirmed automatically.
    pub order_auto_confirm_shipped_days: i64,
    /// Hours a shop has to answer a refund request before it is approved automatically.
    pub refund_respond_hours: i64,
    /// Days after completion during which a buyer may still ask for a refund.
    pub after_sale_days: i64,
    /// Platform time of day (minutes after midnight) from which `serve` scores the day before.
    pub dsr_at_minutes: u32,
    /// Snapshot rows written per transaction by the scoring job.
    pub dsr_batch: usize,
    /// Moderators and admins must use a TOTP second factor (HAODIAN_REQUIRE_MFA=1).
    pub require_mfa: bool,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("database_url", &redact_url(&self.database_url))
            .field("bind", &self.bind)
            .field("base_url", &self.base_url)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("mail_url", &redact_url(&self.mail_url))
            .field("tz", &self.tz)
            .field("pool_size", &self.pool_size)
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

/// Hides the password part of a URL.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

fn var(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.trim().is_empty())
}

fn parse<T: std::str::FromStr>(key: &str, default: T) -> Result<T, AppError> {
    match var(key) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| AppError::Internal(format!("{key}: cannot parse {v:?}"))),
    }
}

fn flag(key: &str) -> Result<bool, AppError> {
    match var(key).as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("0") | Some("false") | Some("no") => Ok(false),
        Some("1") | Some("true") | Some("yes") => Ok(true),
        Some(other) => Err(AppError::Internal(format!(
            "{key}: expected 1/0/true/false, got {other:?}"
        ))),
    }
}

/// Parses `HH:MM` into minutes after midnight.
fn clock_time(key: &str, v: &str) -> Result<u32, AppError> {
    v.split_once(':')
        .and_then(|(h, m)| Some((h.trim().parse::<u32>().ok()?, m.trim().parse::<u32>().ok()?)))
        .filter(|&(h, m)| h < 24 && m < 60)
        .map(|(h, m)| h * 60 + m)
        .ok_or_else(|| AppError::Internal(format!("{key}: expected HH:MM, got {v:?}")))
}

impl Settings {
    pub fn from_env() -> Result<Settings, AppError> {
        let bind = var("HAODIAN_BIND").unwrap_or_else(|| "127.0.0.1:8080".to_string());
        let tz_name = var("HAODIAN_TZ").unwrap_or_else(|| "Asia/Shanghai".to_string());
        let tz: chrono_tz::Tz = tz_name.parse().map_err(|_| {
            AppError::Internal(format!("HAODIAN_TZ: unknown time zone {tz_name:?}"))
        })?;
        let sync = var("HAODIAN_SQLITE_SYNCHRONOUS")
            .unwrap_or_else(|| "FULL".to_string())
            .to_ascii_uppercase();
        if !matches!(sync.as_str(), "FULL" | "NORMAL" | "EXTRA") {
            return Err(AppError::Internal(format!(
                "HAODIAN_SQLITE_SYNCHRONOUS: expected FULL, NORMAL or EXTRA, got {sync:?}"
            )));
        }
        let secret = var("HAODIAN_SECRET");
        if let Some(s) = &secret {
            if s.len() < 32 {
                return Err(AppError::Internal(
                    "HAODIAN_SECRET: must be at least 32 characters".into(),
                ));
            }
        }
        let default_workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let s = Settings {
            database_url: var("DATABASE_URL").unwrap_or_else(|| "sqlite://haodian.db".into()),
            base_url: var("HAODIAN_BASE_URL")
                .unwrap_or_else(|| format!("http://{bind}"))
                .trim_end_matches('/')
                .to_string(),
            bind,
            secret,
            mail_url: var("MAIL_URL").unwrap_or_else(|| "file://mail".into()),
            mail_from: var("MAIL_FROM")
                .unwrap_or_else(|| "haodian <no-reply@haodian.local>".into()),
            tz,
            pool_size: parse("HAODIAN_POOL_SIZE", 10)?,
            workers: parse("HAODIAN_WORKERS", default_workers)?,
            sqlite_synchronous: sync,
            session_idle: Duration::from_secs(
                60 * parse::<u64>("HAODIAN_SESSION_IDLE_MINUTES", 720)?,
            ),
            session_absolute: Duration::from_secs(
                3600 * parse::<u64>("HAODIAN_SESSION_ABSOLUTE_HOURS", 24 * 14)?,
            ),
            cookie_secure: flag("HAODIAN_COOKIE_SECURE")?,
            trust_proxy: flag("HAODIAN_TRUST_PROXY")?,
            login_max_failures_account: parse("HAODIAN_LOGIN_MAX_FAILURES", 5)?,
            login_max_failures_ip: parse("HAODIAN_LOGIN_MAX_FAILURES_IP", 30)?,
            login_base_delay_secs: parse("HAODIAN_LOGIN_BASE_DELAY_SECS", 30)?,
            login_max_delay_secs: parse("HAODIAN_LOGIN_MAX_DELAY_SECS", 900)?,
            max_avatar_bytes: parse("HAODIAN_MAX_AVATAR_BYTES", 2 * 1024 * 1024)?,
            scheduler_interval: Duration::from_secs(parse("HAODIAN_SCHEDULER_SECS", 15)?),
            log_json: var("HAODIAN_LOG_FORMAT").as_deref() == Some("json"),
            metrics_token: var("HAODIAN_METRICS_TOKEN"),
            authorized_max: parse("HAODIAN_AUTHORIZED_MAX", 10)?,
            authorized_min_followers: parse("HAODIAN_AUTHORIZED_MIN_FOLLOWERS", 1000)?,
            authorized_min_days: parse("HAODIAN_AUTHORIZED_MIN_DAYS", 180)?,
            order_pay_minutes: parse("HAODIAN_ORDER_PAY_MINUTES", 30)?,
            order_auto_confirm_days: parse("HAODIAN_ORDER_AUTO_CONFIRM_DAYS", 10)?,
            order_auto_confirm_shipped_days: parse("HAODIAN_ORDER_AUTO_CONFIRM_SHIPPED_DAYS", 15)?,
            refund_respond_hours: parse("HAODIAN_REFUND_RESPOND_HOURS", 48)?,
            after_sale_days: parse("HAODIAN_AFTER_SALE_DAYS", 15)?,
            dsr_at_minutes: clock_time(
                "HAODIAN_DSR_AT",
                &var("HAODIAN_DSR_AT").unwrap_or_else(|| "02:30".into()),
            )?,
            dsr_batch: parse("HAODIAN_DSR_BATCH", 500)?,
            require_mfa: flag("HAODIAN_REQUIRE_MFA")?,
        };
        if s.dsr_batch == 0 {
            return Err(AppError::Internal(
                "HAODIAN_DSR_BATCH must be at least 1".into(),
            ));
        }
        if s.order_pay_minutes < 1
            || s.order_auto_confirm_days < 1
            || s.order_auto_confirm_shipped_days < 1
            || s.refund_respond_hours < 1
            || s.after_sale_days < 1
        {
            return Err(AppError::Internal(
                "HAODIAN_ORDER_* durations must be at least 1".into(),
            ));
        }
        if s.pool_size == 0 || s.workers == 0 {
            return Err(AppError::Internal(
                "HAODIAN_POOL_SIZE and HAODIAN_WORKERS must be at least 1".into(),
            ));
        }
        Ok(s)
    }
}
