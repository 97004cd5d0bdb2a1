//! Login throttling with counters in the database, so every app node sees the same counts.
//!
//! Per account (email as typed) and per client address: after `max` failures within 15 minutes
//! further attempts wait `base · 2^(failures − max)` seconds, capped; a success clears the
//! account's counter. There is no permanent lockout.

use chrono::{Duration, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::db::schema::login_throttle as lt;
use crate::db::{write_tx, DbConn};
use crate::error::AppError;

const WINDOW_MINUTES: i64 = 15;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_failures: i64,
    pub base_delay_secs: i64,
    pub max_delay_secs: i64,
}

/// Seconds until `key` may try again, if it is blocked now.
pub fn blocked_for(conn: &mut DbConn, key: &str) -> Result<Option<u64>, AppError> {
    let now = Utc::now().naive_utc();
    let until: Option<Option<NaiveDateTime>> = lt::table
        .find(key)
        .select(lt::blocked_until)
        .first(conn)
        .optional()?;
    Ok(until
        .flatten()
        .filter(|u| *u > now)
        .map(|u| (u - now).num_seconds().max(1) as u64))
}

/// Delay after `failures` failures (0 when under the limit).
pub fn delay_secs(failures: i64, limits: Limits) -> i64 {
    if failures < limits.max_failures {
        return 0;
    }
    let exp = (failures - limits.max_failures).min(20) as u32;
    limits
        .base_delay_secs
        .saturating_mul(1i64 << exp)
        .min(limits.max_delay_secs)
}

/// Records one failure for `key` and sets its block.
pub fn record_failure(conn: &mut DbConn, key: &str, limits: Limits) -> Result<(), AppError> {
    let now = Utc::now().naive_utc();
    write_tx(conn, |c| {
        crate::per_backend!(c, |c| diesel::insert_into(lt::table)
            .values((
                lt::key.eq(key),
                lt::failures.eq(0i64),
                lt::last_failure_at.eq(now),
            ))
            .on_conflict_do_nothing()
            .execute(c))?;
        // Failures older than the window are forgotten.
        diesel::update(lt::table.find(key))
            .filter(lt::last_failure_at.lt(now - Duration::minutes(WINDOW_MINUTES)))
            .set(lt::failures.eq(0i64))
            .execute(c)?;
        diesel::update(lt::table.find(key))
            .set((
                lt::failures.eq(lt::failures + 1i64),
                lt::last_failure_at.eq(now),
            ))
            .execute(c)?;
        let failures: i64 = lt::table.find(key).select(lt::failures).first(c)?;
        let delay = delay_secs(failures, limits);
        if delay > 0 {
            diesel::update(lt::table.find(key))
                .set(lt::blocked_until.eq(Some(now + Duration::seconds(delay))))
                .execute(c)?;
        }
        Ok(())
    })
}

pub fn clear(conn: &mut DbConn, key: &str) -> Result<(), AppError> {
    diesel::delete(lt::table.find(key)).execute(conn)?;
    Ok(())
}

/// Removes counters that are neither recent nor blocking (housekeeping).
pub fn prune(conn: &mut DbConn) -> Result<usize, AppError> {
    let now = Utc::now().naive_utc();
    Ok(diesel::delete(
        lt::table
            .filter(lt::last_failure_at.lt(now - Duration::minutes(WINDOW_MINUTES)))
            .filter(lt::blocked_until.is_null().or(lt::blocked_until.lt(now))),
    )
    .execute(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_grows_exponentially_and_is_capped() {
        let l = Limits {
            max_failures: 5,
            base_delay_secs: 30,
            max_delay_secs: 900,
        };
        assert_eq!(delay_secs(4, l), 0);
        assert_eq!(delay_secs(5, l), 30);
        assert_eq!(delay_secs(6, l), 60);
        assert_eq!(delay_secs(8, l), 240);
        assert_eq!(delay_secs(9, l), 480);
        assert_eq!(delay_secs(10, l), 900);
        assert_eq!(delay_secs(1000, l), 900);
    }
}
