//! Email through an outbox: every message is a `mail_outbox` row written in the same
//! transaction as the event that causes it; [`drain`] sends due rows with the configured
//! transport, retrying transient failures with jittered exponential backoff and marking
//! permanent ones (or ones that keep failing) dead. SMTP being down loses nothing.

use std::path::PathBuf;
use std::sync::Mutex;

use chrono::{Duration, Utc};
use diesel::prelude::*;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, SmtpTransport, Transport as _};
use rand::Rng;

use crate::db::schema::mail_outbox as mo;
use crate::db::{write_tx, DbConn};
use crate::error::AppError;

/// Attempts before a message is given up as dead.
pub const MAX_ATTEMPTS: i64 = 8;

/// An email to queue.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    pub to: &'a str,
    pub kind: &'a str,
    pub subject: String,
    pub body: String,
}

/// An outbox row as queued: pending, due now.
#[derive(Insertable)]
#[diesel(table_name = mo)]
struct NewMail<'a> {
    to_addr: &'a str,
    subject: &'a str,
    body_text: &'a str,
    kind: &'a str,
    status: &'a str,
    attempts: i64,
    next_attempt_at: chrono::NaiveDateTime,
    created_at: chrono::NaiveDateTime,
}

impl<'a> NewMail<'a> {
    fn of(m: &'a Outgoing<'a>, now: chrono::NaiveDateTime) -> NewMail<'a> {
        NewMail {
            to_addr: m.to,
            subject: &m.subject,
            body_text: &m.body,
            kind: m.kind,
            status: "pending",
            attempts: 0,
            next_attempt_at: now,
            created_at: now,
        }
    }
}

/// Queues an email; call it inside the transaction of the event it reports.
pub fn enqueue(conn: &mut DbConn, m: &Outgoing<'_>) -> Result<(), AppError> {
    // One row: a statement prepared once per connection (a Vec insert is built anew each time).
    diesel::insert_into(mo::table)
        .values(&NewMail::of(m, Utc::now().naive_utc()))
        .execute(conn)?;
    Ok(())
}

/// Queues many emails in a few multi-row inserts (a job that writes thousands would otherwise
/// pay a statement, on PostgreSQL a round trip, for each).
pub fn enqueue_many(conn: &mut DbConn, messages: &[Outgoing<'_>]) -> Result<(), AppError> {
    let now = Utc::now().naive_utc();
    // 8 values a row: 500 rows stay far below both backends' limits on bound parameters.
    for chunk in messages.chunks(500) {
        let rows: Vec<NewMail> = chunk.iter().map(|m| NewMail::of(m, now)).collect();
        crate::per_backend!(conn, |c| diesel::insert_into(mo::table)
            .values(&rows)
            .execute(c))?;
    }
    Ok(())
}

/// Messages not yet sent (pending or being sent): the outbox depth.
pub fn depth(conn: &mut DbConn) -> Result<i64, AppError> {
    Ok(mo::table
        .filter(mo::status.eq_any(["pending", "sending"]))
        .count()
        .get_result(conn)?)
}

/// Why a send failed.
#[derive(Debug)]
pub enum SendError {
    /// Worth retrying (connection refused, 4xx reply, disk full…).
    Transient(String),
    /// Will never succeed (5xx reply, bad address).
    Permanent(String),
}

/// Where mail goes, from `MAIL_URL`.
pub enum Transport {
    Smtp(Box<SmtpTransport>),
    File(PathBuf),
    Log,
    /// Keeps messages in memory (tests).
    Memory(Mutex<Vec<Message>>),
}

impl Transport {
    /// `smtp://user:pass@host:port` (STARTTLS; `?tls=none` for plain, e.g. a local relay),
    /// `smtps://…` (implicit TLS), `file://DIR`, `log` or `memory`.
    pub fn from_url(url: &str) -> Result<Transport, AppError> {
        let bad = |why: &str| AppError::Internal(format!("MAIL_URL: {why}"));
        if url == "log" {
            return Ok(Transport::Log);
        }
        if url == "memory" {
            return Ok(Transport::Memory(Mutex::new(Vec::new())));
        }
        if let Some(dir) = url.strip_prefix("file://") {
            let dir = if dir.is_empty() { "mail" } else { dir };
            return Ok(Transport::File(PathBuf::from(dir)));
        }
        let u = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        let host = u.host_str().ok_or_else(|| bad("missing host"))?;
        let tls = u
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.to_string());
        let mut builder = match (u.scheme(), tls.as_deref()) {
            ("smtps", _) => SmtpTransport::relay(host).map_err(|e| bad(&e.to_string()))?,
            ("smtp", Some("none")) => SmtpTransport::builder_dangerous(host),
            ("smtp", _) => SmtpTransport::starttls_relay(host).map_err(|e| bad(&e.to_string()))?,
            (other, _) => return Err(bad(&format!("unsupported scheme {other:?}"))),
        };
        if let Some(port) = u.port() {
            builder = builder.port(port);
        }
        if !u.username().is_empty() {
            let user = percent_decode(u.username());
            let pass = percent_decode(u.password().unwrap_or(""));
            builder = builder.credentials(Credentials::new(user, pass));
        }
        builder = builder.timeout(Some(std::time::Duration::from_secs(20)));
        Ok(Transport::Smtp(Box::new(builder.build())))
    }

    pub fn send(&self, msg: &Message) -> Result<(), SendError> {
        match self {
            Transport::Smtp(t) => t.send(msg).map(|_| ()).map_err(|e| {
                if e.is_permanent() {
                    SendError::Permanent(e.to_string())
                } else {
                    SendError::Transient(e.to_string())
                }
            }),
            Transport::File(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| SendError::Transient(e.to_string()))?;
                lettre::FileTransport::new(dir)
                    .send(msg)
                    .map(|_| ())
                    .map_err(|e| SendError::Transient(e.to_string()))
            }
            Transport::Log => {
                let to: Vec<String> = msg.envelope().to().iter().map(|a| a.to_string()).collect();
                tracing::info!(to = ?to, "email (MAIL_URL=log)");
                Ok(())
            }
            Transport::Memory(v) => {
                if let Ok(mut v) = v.lock() {
                    v.push(msg.clone());
                }
                Ok(())
            }
        }
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Delay before retry `attempt` (1-based): 30 s · 2^(attempt−1), capped at 6 h, ±25 % jitter.
pub fn backoff(attempt: i64) -> Duration {
    let base = 30i64
        .saturating_mul(1i64 << (attempt - 1).clamp(0, 16))
        .min(6 * 3600);
    let jitter = rand::thread_rng().gen_range(0.75..1.25);
    Duration::milliseconds((base as f64 * 1000.0 * jitter) as i64)
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DrainReport {
    pub sent: usize,
    pub retried: usize,
    pub dead: usize,
}

type Row = (i64, String, String, String, i64);

/// Sends what is due, at most `limit` messages. Each row is claimed with a compare-and-set
/// update first, so several nodes draining at once never send a message twice; a claim that
/// outlives its lease (a node died mid-send) is released again.
pub fn drain(
    conn: &mut DbConn,
    transport: &Transport,
    from: &str,
    limit: i64,
) -> Result<DrainReport, AppError> {
    let now = Utc::now().naive_utc();
    let from: Mailbox = from
        .parse()
        .map_err(|e| AppError::Internal(format!("MAIL_FROM: {e}")))?;
    write_tx(conn, |c| {
        diesel::update(
            mo::table
                .filter(mo::status.eq("sending"))
                .filter(mo::locked_until.lt(now)),
        )
        .set((
            mo::status.eq("pending"),
            mo::locked_until.eq(None::<chrono::NaiveDateTime>),
        ))
        .execute(c)
    })?;
    let due: Vec<Row> = mo::table
        .filter(mo::status.eq("pending"))
        .filter(mo::next_attempt_at.le(now))
        .order(mo::id)
        .limit(limit)
        .select((
            mo::id,
            mo::to_addr,
            mo::subject,
            mo::body_text,
            mo::attempts,
        ))
        .load(conn)?;
    let mut report = DrainReport::default();
    for (id, to, subject, body, attempts) in due {
        let claimed = write_tx(conn, |c| {
            diesel::update(mo::table.find(id).filter(mo::status.eq("pending")))
                .set((
                    mo::status.eq("sending"),
                    mo::locked_until.eq(Some(now + Duration::minutes(5))),
                ))
                .execute(c)
        })?;
        if claimed == 0 {
            continue;
        }
        let eight_bit = !matches!(transport, Transport::Smtp(_));
        let result = build(&from, &to, &subject, &body, eight_bit).and_then(|m| transport.send(&m));
        let attempts = attempts + 1;
        let done = Utc::now().naive_utc();
        let set_sent = |c: &mut DbConn| {
            diesel::update(mo::table.find(id))
                .set((
                    mo::status.eq("sent"),
                    mo::attempts.eq(attempts),
                    mo::sent_at.eq(Some(done)),
                    mo::locked_until.eq(None::<chrono::NaiveDateTime>),
                ))
                .execute(c)
        };
        match result {
            Ok(()) => {
                write_tx(conn, set_sent)?;
                report.sent += 1;
            }
            Err(err) => {
                let (dead, msg) = match err {
                    SendError::Permanent(m) => (true, m),
                    SendError::Transient(m) => (attempts >= MAX_ATTEMPTS, m),
                };
                tracing::warn!(outbox_id = id, attempts, dead, error = %msg, "email not sent");
                let status = if dead { "dead" } else { "pending" };
                write_tx(conn, |c| {
                    diesel::update(mo::table.find(id))
                        .set((
                            mo::status.eq(status),
                            mo::attempts.eq(attempts),
                            mo::last_error.eq(Some(msg.chars().take(500).collect::<String>())),
                            mo::next_attempt_at.eq(done + backoff(attempts)),
                            mo::locked_until.eq(None::<chrono::NaiveDateTime>),
                        ))
                        .execute(c)
                })?;
                if dead {
                    report.dead += 1;
                } else {
                    report.retried += 1;
                }
            }
        }
    }
    Ok(report)
}

fn build(
    from: &Mailbox,
    to: &str,
    subject: &str,
    body: &str,
    eight_bit: bool,
) -> Result<Message, SendError> {
    let to: Mailbox = to
        .parse()
        .map_err(|e: lettre::address::AddressError| SendError::Permanent(e.to_string()))?;
    // Files get 8bit so links stay readable in the raw message (quoted-printable would turn
    // `token=` into `token=3D`). Over SMTP lettre picks the encoding, because a relay without
    // 8BITMIME refuses 8bit bodies.
    let body = if eight_bit {
        Body::new_with_encoding(body.to_string(), ContentTransferEncoding::EightBit)
            .unwrap_or_else(Body::new)
    } else {
        Body::new(body.to_string())
    };
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| SendError::Permanent(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_cap() {
        for _ in 0..50 {
            let first = backoff(1).num_milliseconds();
            assert!((22_500..=37_500).contains(&first), "{first}");
            let later = backoff(30).num_milliseconds();
            assert!(later <= 6 * 3600 * 1250, "{later}");
            assert!(later >= 6 * 3600 * 750, "{later}");
        }
        assert!(backoff(4).num_milliseconds() > backoff(1).num_milliseconds());
    }

    #[test]
    fn mail_urls_parse() {
        assert!(matches!(Transport::from_url("log"), Ok(Transport::Log)));
        assert!(matches!(
            Transport::from_url("file:///tmp/x"),
            Ok(Transport::File(_))
        ));
        assert!(matches!(
            Transport::from_url("smtp://u:p%40ss@localhost:2525?tls=none"),
            Ok(Transport::Smtp(_))
        ));
        assert!(Transport::from_url("ftp://x").is_err());
        assert_eq!(percent_decode("p%40ss"), "p@ss");
    }
}
