//! Job leases and the scheduler.
//!
//! Every run of a job takes a lease row in `job_runs`, unique on (job, period). Only the node
//! whose insert wins runs the job for that period; the others see the row and skip. A run that
//! failed, or whose node stopped heart-beating, can be taken over (resumed) by the next caller.

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::config::Settings;
use crate::db::schema::job_runs as jr;
use crate::db::{is_unique_violation, write_tx, DbConn, Pool};
use crate::error::AppError;
use crate::mail::Transport;

/// How long a running lease may go without a heartbeat before another node may take it over.
pub const STALE_AFTER_SECS: i64 = 300;

/// What a job gets to work with.
pub struct JobCtx<'a> {
    pub conn: &'a mut DbConn,
    pub settings: &'a Settings,
    pub transport: &'a Transport,
    pub lease_id: i64,
}

impl JobCtx<'_> {
    /// Keeps the lease alive during long work.
    pub fn heartbeat(&mut self) -> Result<(), AppError> {
        heartbeat(self.conn, self.lease_id)
    }
}

/// A periodic job: runs at most once per period of `every_secs` seconds.
pub struct Job {
    pub name: &'static str,
    pub every_secs: i64,
    pub run: fn(&mut JobCtx<'_>) -> Result<String, AppError>,
}

impl Job {
    /// The period label of `now`, e.g. `2026-11-22T03:15:00` for a 15-minute job.
    pub fn period(&self, now: NaiveDateTime) -> String {
        let ts = now.and_utc().timestamp();
        let start = ts - ts.rem_euclid(self.every_secs.max(1));
        chrono::DateTime::from_timestamp(start, 0)
            .map(|d| d.naive_utc().format("%Y-%m-%dT%H:%M:%S").to_string())
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lease {
    /// This node runs the job; the lease row id.
    Acquired(i64),
    /// The period's run is finished.
    Done,
    /// Another node is running it now.
    Busy(String),
}

/// Takes the lease for (job, period) if nobody holds it.
pub fn acquire(conn: &mut DbConn, job: &str, period: &str, node: &str) -> Result<Lease, AppError> {
    let now = Utc::now().naive_utc();
    let inserted = write_tx(conn, |c| {
        diesel::insert_into(jr::table)
            .values((
                jr::job.eq(job),
                jr::period.eq(period),
                jr::status.eq("running"),
                jr::node.eq(node),
                jr::started_at.eq(now),
                jr::heartbeat_at.eq(now),
                jr::attempts.eq(1i64),
                jr::detail.eq(""),
            ))
            .execute(c)
    });
    let won = match inserted {
        Ok(n) => n == 1,
        Err(e) if is_unique_violation(&e) => false,
        Err(e) => return Err(e.into()),
    };
    let (id, status, holder, beat): (i64, String, String, NaiveDateTime) = jr::table
        .filter(jr::job.eq(job))
        .filter(jr::period.eq(period))
        .select((jr::id, jr::status, jr::node, jr::heartbeat_at))
        .first(conn)?;
    if won {
        return Ok(Lease::Acquired(id));
    }
    match status.as_str() {
        "done" => Ok(Lease::Done),
        "running"
            if beat > now - chrono::Duration::seconds(STALE_AFTER_SECS)
                && !holder_gone(&holder) =>
        {
            Ok(Lease::Busy(holder))
        }
        _ => {
            // Failed, or running but stale: take it over with a compare-and-set on what we read.
            let taken = write_tx(conn, |c| {
                diesel::update(
                    jr::table
                        .find(id)
                        .filter(jr::status.eq(&status))
                        .filter(jr::heartbeat_at.eq(beat)),
                )
                .set((
                    jr::status.eq("running"),
                    jr::node.eq(node),
                    jr::heartbeat_at.eq(now),
                    jr::attempts.eq(jr::attempts + 1i64),
                ))
                .execute(c)
            })?;
            Ok(if taken == 1 {
                Lease::Acquired(id)
            } else {
                Lease::Busy(holder)
            })
        }
    }
}

pub fn heartbeat(conn: &mut DbConn, id: i64) -> Result<(), AppError> {
    let now = Utc::now().naive_utc();
    write_tx(conn, |c| {
        diesel::update(jr::table.find(id))
            .set(jr::heartbeat_at.eq(now))
            .execute(c)
    })?;
    Ok(())
}

pub fn finish(conn: &mut DbConn, id: i64, ok: bool, detail: &str) -> Result<(), AppError> {
    let now = Utc::now().naive_utc();
    write_tx(conn, |c| {
        diesel::update(jr::table.find(id))
            .set((
                jr::status.eq(if ok { "done" } else { "failed" }),
                jr::finished_at.eq(Some(now)),
                jr::heartbeat_at.eq(now),
                jr::detail.eq(detail.chars().take(2000).collect::<String>()),
            ))
            .execute(c)
    })?;
    Ok(())
}

/// What happened to one job in one pass.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub job: &'static str,
    pub period: String,
    pub result: Result<String, String>,
    pub skipped: Option<String>,
}

/// Runs every job whose current period has no finished run. Failures are logged and recorded,
/// never fatal.
pub fn run_due(
    pool: &Pool,
    settings: &Settings,
    transport: &Transport,
    jobs: &[Job],
    node: &str,
) -> Vec<Outcome> {
    let mut out = Vec::new();
    for job in jobs {
        let period = job.period(Utc::now().naive_utc());
        let mut outcome = Outcome {
            job: job.name,
            period: period.clone(),
            result: Ok(String::new()),
            skipped: None,
        };
        let mut conn = match pool.get() {
            Ok(c) => c,
            Err(e) => {
                outcome.result = Err(e.to_string());
                out.push(outcome);
                continue;
            }
        };
        match acquire(&mut conn, job.name, &period, node) {
            Ok(Lease::Acquired(id)) => {
                let result = {
                    let mut ctx = JobCtx {
                        conn: &mut conn,
                        settings,
                        transport,
                        lease_id: id,
                    };
                    (job.run)(&mut ctx)
                };
                let (ok, detail) = match &result {
                    Ok(d) => (true, d.clone()),
                    Err(e) => (false, e.to_string()),
                };
                if !ok {
                    tracing::error!(job = job.name, period = %period, error = %detail, "job failed");
                }
                if let Err(e) = finish(&mut conn, id, ok, &detail) {
                    tracing::error!(job = job.name, error = %e, "could not record job result");
                }
                outcome.result = result.map_err(|e| e.to_string());
            }
            Ok(Lease::Done) => outcome.skipped = Some("done".into()),
            Ok(Lease::Busy(holder)) => outcome.skipped = Some(format!("running on {holder}")),
            Err(e) => outcome.result = Err(e.to_string()),
        }
        out.push(outcome);
    }
    out
}

/// Whether the lease holder was a process on this host that no longer exists (it crashed or
/// was killed): then its lease can be resumed at once instead of after [`STALE_AFTER_SECS`].
/// Only answers yes where `/proc` shows processes (Linux); other holders wait for staleness.
pub fn holder_gone(holder: &str) -> bool {
    let node = holder.rsplit('@').next().unwrap_or(holder);
    let Some((host, pid)) = node.rsplit_once(':') else {
        return false;
    };
    let me = node_name();
    let my_host = me.rsplit_once(':').map(|(h, _)| h).unwrap_or("");
    if host != my_host || !std::path::Path::new("/proc/self").exists() {
        return false;
    }
    match pid.parse::<u32>() {
        Ok(pid) => !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        Err(_) => false,
    }
}

/// A name for this process in lease rows.
pub fn node_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "node".into());
    format!("{host}:{}", std::process::id())
}

/// Deletes finished lease rows of frequent jobs older than `days` (housekeeping).
pub fn prune_runs(conn: &mut DbConn, jobs: &[&str], days: i64) -> Result<usize, AppError> {
    let cutoff = Utc::now().naive_utc() - chrono::Duration::days(days);
    Ok(diesel::delete(
        jr::table
            .filter(jr::job.eq_any(jobs))
            .filter(jr::status.eq("done"))
            .filter(jr::started_at.lt(cutoff)),
    )
    .execute(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_local_holder_is_gone() {
        let me = node_name();
        assert!(!holder_gone(&me), "this process is alive");
        assert!(!holder_gone(&format!("cli@{me}")));
        let host = me.rsplit_once(':').map(|(h, _)| h).unwrap_or("");
        // Pid numbers above the kernel's maximum never exist.
        assert!(holder_gone(&format!("{host}:4294967295")));
        assert!(holder_gone(&format!("cli@{host}:4294967295")));
        assert!(!holder_gone("elsewhere.example:1"));
        assert!(!holder_gone("garbage"));
    }

    #[test]
    fn periods_are_aligned() {
        let job = Job {
            name: "x",
            every_secs: 900,
            run: |_| Ok(String::new()),
        };
        let t = chrono::NaiveDate::from_ymd_opt(2026, 11, 22)
            .and_then(|d| d.and_hms_opt(3, 29, 59))
            .unwrap();
        assert_eq!(job.period(t), "2026-11-22T03:15:00");
        let daily = Job {
            name: "d",
            every_secs: 86_400,
            run: |_| Ok(String::new()),
        };
        assert_eq!(daily.period(t), "2026-11-22T00:00:00");
    }
}
