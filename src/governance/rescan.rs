//! `haodian governance rescan`: re-checks every listed product against the rules in force (after
//! a rule update). A blocking prohibited term or a missing qualification records an automatic
//! violation of the matching type, which delists the product when the type says so (points,
//! the node it reaches, audit row, email); a term that
//! needs a moderator sends the product back to the review queue. Each product is its own
//! transaction with its listing-check row; a product once taken down is no longer listed, so a
//! second run finds nothing new.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::rules::{self, Hit, Severity};
use super::violations::{self, NewViolation, ViolationType};
use crate::accounts::service as accounts;
use crate::db::schema::{listing_checks as lc, products, violation_types as vt};
use crate::db::{write_tx, DbConn};
use crate::error::AppError;

/// What one rescan did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub version: i64,
    pub checked: usize,
    pub violations: usize,
    pub to_review: usize,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rule set v{}: checked {} listed products, {} violations recorded, {} sent to review",
            self.version, self.checked, self.violations, self.to_review
        )
    }
}

fn active_type(c: &mut DbConn, code: &str) -> Result<Option<ViolationType>, AppError> {
    Ok(vt::table
        .filter(vt::code.eq(code))
        .filter(vt::active.eq(true))
        .select(ViolationType::as_select())
        .first(c)
        .optional()?)
}

/// The violation type a set of hits calls for, and the hits that justify it.
fn verdict(hits: &[Hit]) -> Option<(&'static str, Vec<&Hit>)> {
    let blocking = |prefix: &str| -> Vec<&Hit> {
        hits.iter()
            .filter(|h| h.severity == Severity::Block && h.rule.starts_with(prefix))
            .collect()
    };
    let terms = blocking("term:");
    if !terms.is_empty() {
        return Some(("prohibited_terms", terms));
    }
    let quals = blocking("qualification:");
    if !quals.is_empty() {
        return Some(("missing_qualification", quals));
    }
    None
}

pub fn run(
    conn: &mut DbConn,
    tz: chrono_tz::Tz,
    now: NaiveDateTime,
    batch: i64,
) -> Result<Report, AppError> {
    let ruleset = rules::load(conn)?;
    let mut report = Report {
        version: ruleset.version,
        ..Report::default()
    };
    let mut after = 0i64;
    loop {
        let ids: Vec<(i64, i64)> = products::table
            .filter(products::status.eq("listed"))
            .filter(products::id.gt(after))
            .order(products::id)
            .limit(batch)
            .select((products::id, products::shop_id))
            .load(conn)?;
        let Some(&(last, _)) = ids.last() else {
            break;
        };
        after = last;
        for (id, shop_id) in ids {
            report.checked += 1;
            let (product, hits) =
                crate::catalog::service::evaluate_product(conn, shop_id, id, &ruleset)?;
            let review = hits
                .iter()
                .any(|h| h.severity == Severity::Review && h.rule.starts_with("term:"));
            let Some((code, why)) = verdict(&hits) else {
                if review {
                    write_tx(conn, |c| {
                        let n = diesel::update(
                            products::table
                                .find(id)
                                .filter(products::status.eq("listed")),
                        )
                        .set((
                            products::status.eq("pending_review"),
                            products::updated_at.eq(now),
                        ))
                        .execute(c)?;
                        if n == 0 {
                            return Ok(());
                        }
                        check_row(c, id, ruleset.version, "pending_review", &hits, now)?;
                        accounts::audit_shop(
                            c,
                            None,
                            "product.rescan_review",
                            "product",
                            Some(id),
                            Some(shop_id),
                            &format!("rule set v{}", ruleset.version),
                        )
                    })?;
                    report.to_review += 1;
                }
                continue;
            };
            let Some(kind) = active_type(conn, code)? else {
                tracing::warn!(
                    code,
                    "rescan: violation type retired, product left as it is"
                );
                continue;
            };
            let description = format!(
                "自动复检（规则集 v{}）/ Automatic re-check (rule set v{}): {}",
                ruleset.version,
                ruleset.version,
                why.iter()
                    .map(|h| format!("{} 「{}」 {}", h.field, h.matched, h.basis))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            let done = write_tx(conn, |c| -> Result<bool, AppError> {
                // Still listed? (a merchant or moderator may have acted since the batch was read)
                let listed: i64 = products::table
                    .find(id)
                    .filter(products::status.eq("listed"))
                    .count()
                    .get_result(c)?;
                if listed == 0 {
                    return Ok(false);
                }
                check_row(c, id, ruleset.version, "delisted", &hits, now)?;
                violations::record_in(
                    c,
                    &NewViolation {
                        shop_id,
                        kind: &kind,
                        product_id: Some(product.id),
                        order_id: None,
                        description: &description,
                        evidence: "",
                        source: "rescan",
                        actor: None,
                    },
                    tz,
                    now,
                )?;
                Ok(true)
            })?;
            if done {
                report.violations += 1;
            }
        }
    }
    Ok(report)
}

fn check_row(
    c: &mut DbConn,
    product: i64,
    version: i64,
    outcome: &str,
    hits: &[Hit],
    now: NaiveDateTime,
) -> Result<(), AppError> {
    diesel::insert_into(lc::table)
        .values((
            lc::product_id.eq(product),
            lc::rule_set_id.eq(version),
            lc::outcome.eq(outcome),
            lc::hits.eq(serde_json::to_string(hits).map_err(AppError::internal)?),
            lc::created_at.eq(now),
        ))
        .execute(c)?;
    Ok(())
}
