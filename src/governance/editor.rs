//! The rules editor (admins only). Every change runs in one transaction that snapshots the
//! rules before and after, writes a new rule-set version with the snapshot and the line diff,
//! and one audit row with the diff. Changes take effect at once: the listing checks, violation
//! recording and scoring read the live tables, and the version they used is the newest row.
//!
//! A snapshot is a map of sections (terms, params, violation types, penalty nodes, score
//! rules) to one canonical line per rule, so a diff is the lines removed and added.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Deserialize;

use crate::accounts::{service as accounts, Role, SessionUser};
use crate::db::schema::{
    categories, penalty_nodes as pn, prohibited_terms as pt, rule_params, rule_sets, score_rules,
    violation_types as vt,
};
use crate::db::{write_tx, DbConn};
use crate::error::{AppError, FieldErrors};

pub type Snapshot = BTreeMap<String, Vec<String>>;

/// The rules in force, one canonical line per rule.
pub fn snapshot(c: &mut DbConn) -> Result<Snapshot, AppError> {
    let mut s = Snapshot::new();
    let cats: Vec<(i64, String)> = categories::table
        .select((categories::id, categories::slug))
        .load(c)?;
    let slug = |id: Option<i64>| {
        id.and_then(|i| cats.iter().find(|(c, _)| *c == i))
            .map(|(_, s)| format!(":{s}"))
            .unwrap_or_default()
    };
    type TermRow = (String, String, String, Option<i64>, String, String);
    let terms: Vec<TermRow> = pt::table
        .order(pt::id)
        .select((
            pt::term,
            pt::match_type,
            pt::scope,
            pt::scope_category_id,
            pt::severity,
            pt::legal_basis,
        ))
        .load(c)?;
    s.insert(
        "terms".into(),
        terms
            .into_iter()
            .map(|(t, m, sc, cat, sev, basis)| {
                format!("{t} | {m} | {sc}{} | {sev} | {basis}", slug(cat))
            })
            .collect(),
    );
    let params: Vec<(String, i64)> = rule_params::table
        .order(rule_params::key)
        .select((rule_params::key, rule_params::value))
        .load(c)?;
    s.insert(
        "params".into(),
        params
            .into_iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect(),
    );
    type TypeRow = (String, i64, String, String, String, i64, bool, bool);
    let types: Vec<TypeRow> = vt::table
        .filter(vt::active.eq(true))
        .order(vt::code)
        .select((
            vt::code,
            vt::version,
            vt::name_zh,
            vt::name_en,
            vt::track,
            vt::points,
            vt::delists_product,
            vt::evidence_required,
        ))
        .load(c)?;
    s.insert(
        "violation_types".into(),
        types
            .into_iter()
            .map(|(code, v, zh, en, track, pts, delist, ev)| {
                format!(
                    "{code} v{v} | {zh} / {en} | {track} {pts} | delists product: {delist} | evidence required: {ev}"
                )
            })
            .collect(),
    );
    let nodes = super::violations::nodes(c)?;
    s.insert(
        "penalty_nodes".into(),
        nodes
            .iter()
            .map(|n| {
                format!(
                    "{} {}{} -> {} {}d{}",
                    n.track,
                    n.threshold,
                    if n.repeat_every > 0 {
                        format!(" (every {} after)", n.repeat_every)
                    } else {
                        String::new()
                    },
                    n.action.as_str(),
                    n.days,
                    if n.delist_all { " + delist all" } else { "" }
                )
            })
            .collect(),
    );
    let quals: Vec<(String, String)> = categories::table
        .filter(categories::required_qualifications.ne(""))
        .order(categories::slug)
        .select((categories::slug, categories::required_qualifications))
        .load(c)?;
    s.insert(
        "qualifications".into(),
        quals
            .into_iter()
            .map(|(slug, req)| format!("{slug} requires {req}"))
            .collect(),
    );
    let (_, score) = crate::dsr::rules::current(c)?;
    let value = serde_json::to_value(&score).map_err(AppError::internal)?;
    s.insert(
        "score".into(),
        value
            .as_object()
            .map(|o| o.iter().map(|(k, v)| format!("{k} = {v}")).collect())
            .unwrap_or_default(),
    );
    Ok(s)
}

/// The lines each section lost (`- …`) and gained (`+ …`).
pub fn diff(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    let empty = Vec::new();
    let sections: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for sec in sections {
        let b = before.get(sec).unwrap_or(&empty);
        let a = after.get(sec).unwrap_or(&empty);
        for line in b.iter().filter(|l| !a.contains(l)) {
            out.push(format!("- [{sec}] {line}"));
        }
        for line in a.iter().filter(|l| !b.contains(l)) {
            out.push(format!("+ [{sec}] {line}"));
        }
    }
    out
}

fn require_admin(me: &SessionUser) -> Result<(), AppError> {
    if me.has_role(Role::Admin) {
        Ok(())
    } else {
        Err(AppError::Forbidden("error.403.body"))
    }
}

/// Applies `f` as one new rule-set version: snapshot, diff, version row, audit row.
fn change<F>(
    conn: &mut DbConn,
    me: &SessionUser,
    note: &str,
    now: NaiveDateTime,
    f: F,
) -> Result<i64, AppError>
where
    F: FnOnce(&mut DbConn) -> Result<(), AppError>,
{
    require_admin(me)?;
    write_tx(conn, |c| {
        let before = snapshot(c)?;
        f(c)?;
        record_version(c, me.id, note, &before, now)?.ok_or(AppError::Conflict("rules.no_change"))
    })
}

/// Records the rules as they now are as a new version, given the snapshot taken before a
/// change in the caller's transaction (also used by the category editor for qualification
/// requirements): the version row and one rules.change audit row with the diff. None when
/// nothing changed.
pub fn record_version(
    c: &mut DbConn,
    actor: i64,
    note: &str,
    before: &Snapshot,
    now: NaiveDateTime,
) -> Result<Option<i64>, AppError> {
    let before_json = serde_json::to_string(before).map_err(AppError::internal)?;
    // The seeded version predates snapshots: what was in force until now is its content.
    diesel::update(rule_sets::table.filter(rule_sets::snapshot.eq("{}")))
        .set(rule_sets::snapshot.eq(&before_json))
        .execute(c)?;
    let after = snapshot(c)?;
    let lines = diff(before, &after);
    if lines.is_empty() {
        return Ok(None);
    }
    let text = lines.join("\n");
    let id: i64 = diesel::insert_into(rule_sets::table)
        .values((
            rule_sets::note.eq(note),
            rule_sets::created_by.eq(Some(actor)),
            rule_sets::created_at.eq(now),
            rule_sets::snapshot.eq(serde_json::to_string(&after).map_err(AppError::internal)?),
            rule_sets::diff.eq(&text),
        ))
        .returning(rule_sets::id)
        .get_result(c)?;
    accounts::audit(
        c,
        Some(actor),
        "rules.change",
        "rule_set",
        Some(id),
        &format!("{note}\n{text}"),
    )?;
    Ok(Some(id))
}

// ---------- prohibited terms ----------

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct TermForm {
    pub term: String,
    pub match_type: String,
    pub scope: String,
    pub category: String,
    pub severity: String,
    pub legal_basis: String,
}

pub fn add_term(
    conn: &mut DbConn,
    me: &SessionUser,
    f: &TermForm,
    now: NaiveDateTime,
) -> Result<i64, AppError> {
    require_admin(me)?;
    let mut errors = FieldErrors::new();
    let term = f.term.trim();
    if !(1..=50).contains(&term.chars().count()) {
        errors.add("term", "rules_term");
    }
    if !["substring", "word", "regex"].contains(&f.match_type.as_str()) {
        errors.add("match_type", "rules_choice");
    } else if f.match_type == "regex" && regex::Regex::new(&format!("(?i){term}")).is_err() {
        errors.add("term", "rules_regex");
    }
    if !["block", "review", "warn"].contains(&f.severity.as_str()) {
        errors.add("severity", "rules_choice");
    }
    let basis = f.legal_basis.trim();
    if !(2..=200).contains(&basis.chars().count()) {
        errors.add("legal_basis", "rules_basis");
    }
    let category: Option<i64> = if f.category.trim().is_empty() {
        None
    } else {
        categories::table
            .filter(categories::slug.eq(f.category.trim()))
            .select(categories::id)
            .first(conn)
            .optional()?
    };
    match f.scope.as_str() {
        "all" => {}
        "only" | "except" if category.is_some() => {}
        "only" | "except" => errors.add("category", "rules_category"),
        _ => errors.add("scope", "rules_choice"),
    }
    errors.into_result()?;
    let note = format!("add term {term}");
    change(conn, me, &note, now, |c| {
        diesel::insert_into(pt::table)
            .values((
                pt::term.eq(term),
                pt::match_type.eq(&f.match_type),
                pt::scope.eq(&f.scope),
                pt::scope_category_id.eq(if f.scope == "all" { None } else { category }),
                pt::severity.eq(&f.severity),
                pt::legal_basis.eq(basis),
                pt::created_at.eq(now),
            ))
            .execute(c)?;
        Ok(())
    })
}

pub fn delete_term(
    conn: &mut DbConn,
    me: &SessionUser,
    id: i64,
    now: NaiveDateTime,
) -> Result<i64, AppError> {
    require_admin(me)?;
    let term: String = pt::table
        .find(id)
        .select(pt::term)
        .first(conn)
        .optional()?
        .ok_or(AppError::NotFound)?;
    change(conn, me, &format!("remove term {term}"), now, |c| {
        if diesel::delete(pt::table.find(id)).execute(c)? == 0 {
            return Err(AppError::Conflict("rules.changed"));
        }
        Ok(())
    })
}

// ---------- parameters ----------

/// The editable parameters: (key, min, max).
pub const PARAMS: [(&str, i64, i64); 4] = [
    ("price_ceiling_fen", 100, 10_000_000_000),
    ("discount_floor_percent", 1, 100),
    ("appeal_days", 1, 60),
    ("appeal_review_days", 1, 30),
];

pub fn set_param(
    conn: &mut DbConn,
    me: &SessionUser,
    key: &str,
    value: &str,
    now: NaiveDateTime,
) -> Result<i64, AppError> {
    require_admin(me)?;
    let Some((key, min, max)) = PARAMS.iter().find(|(k, _, _)| *k == key).copied() else {
        return Err(AppError::field("value", "rules_choice"));
    };
    let value = match value.trim().parse::<i64>() {
        Ok(v) if (min..=max).contains(&v) => v,
        _ => return Err(AppError::field("value", "rules_param")),
    };
    change(conn, me, &format!("set {key} = {value}"), now, |c| {
        crate::per_backend!(c, |c| diesel::insert_into(rule_params::table)
            .values((rule_params::key.eq(key), rule_params::value.eq(value)))
            .on_conflict(rule_params::key)
            .do_update()
            .set(rule_params::value.eq(value))
            .execute(c))?;
        Ok(())
    })
}

// ---------- violation types ----------

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct TypeForm {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    pub track: String,
    pub points: String,
    pub delists_product: Option<String>,
    pub evidence_required: Option<String>,
}

/// Adds a violation type, or a new version of an existing code (the old one retires; the
/// violations recorded under it keep pointing at it).
pub fn save_type(
    conn: &mut DbConn,
    me: &SessionUser,
    f: &TypeForm,
    now: NaiveDateTime,
) -> Result<i64, AppError> {
    require_admin(me)?;
    let mut errors = FieldErrors::new();
    let code = f.code.trim().to_lowercase();
    if !(3..=40).contains(&code.len()) || !code.chars().all(|c| c.is_ascii_lowercase() || c == '_')
    {
        errors.add("code", "rules_code");
    }
    let (zh, en) = (f.name_zh.trim(), f.name_en.trim());
    if !(1..=40).contains(&zh.chars().count()) {
        errors.add("name_zh", "rules_name");
    }
    if !(1..=60).contains(&en.chars().count()) {
        errors.add("name_en", "rules_name");
    }
    if !super::violations::TRACKS.contains(&f.track.as_str()) {
        errors.add("track", "rules_choice");
    }
    let points = match f.points.trim().parse::<i64>() {
        Ok(p) if (0..=48).contains(&p) => p,
        _ => {
            errors.add("points", "rules_points");
            0
        }
    };
    errors.into_result()?;
    change(conn, me, &format!("violation type {code}"), now, |c| {
        let version: Option<i64> = vt::table
            .filter(vt::code.eq(&code))
            .select(diesel::dsl::max(vt::version))
            .first(c)?;
        diesel::update(
            vt::table
                .filter(vt::code.eq(&code))
                .filter(vt::active.eq(true)),
        )
        .set(vt::active.eq(false))
        .execute(c)?;
        diesel::insert_into(vt::table)
            .values((
                vt::code.eq(&code),
                vt::version.eq(version.unwrap_or(0) + 1),
                vt::name_zh.eq(zh),
                vt::name_en.eq(en),
                vt::track.eq(&f.track),
                vt::points.eq(points),
                vt::delists_product.eq(f.delists_product.is_some()),
                vt::evidence_required.eq(f.evidence_required.is_some()),
                vt::active.eq(true),
                vt::created_by.eq(Some(me.id)),
                vt::created_at.eq(now),
            ))
            .execute(c)?;
        Ok(())
    })
}

/// Retires a violation type: no new violations of it (recorded ones stay).
pub fn retire_type(
    conn: &mut DbConn,
    me: &SessionUser,
    code: &str,
    now: NaiveDateTime,
) -> Result<i64, AppError> {
    change(
        conn,
        me,
        &format!("retire violation type {code}"),
        now,
        |c| {
            let n = diesel::update(
                vt::table
                    .filter(vt::code.eq(code))
                    .filter(vt::active.eq(true)),
            )
            .set(vt::active.eq(false))
            .execute(c)?;
            if n == 0 {
                return Err(AppError::NotFound);
            }
            Ok(())
        },
    )
}

// ---------- penalty nodes ----------

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct NodeForm {
    pub track: String,
    pub threshold: String,
    pub repeat_every: String,
    pub action: String,
    pub days: String,
    pub delist_all: Option<String>,
}

/// Sets the node of a track at a threshold (adds it or replaces it).
pub fn save_node(
    conn: &mut DbConn,
    me: &SessionUser,
    f: &NodeForm,
    now: NaiveDateTime,
) -> Result<i64, AppError> {
    require_admin(me)?;
    let mut errors = FieldErrors::new();
    let num = |s: &str, lo: i64, hi: i64| {
        s.trim()
            .parse::<i64>()
            .ok()
            .filter(|v| (lo..=hi).contains(v))
    };
    if !super::violations::TRACKS.contains(&f.track.as_str()) {
        errors.add("track", "rules_choice");
    }
    let threshold = num(&f.threshold, 1, 1000);
    if threshold.is_none() {
        errors.add("threshold", "rules_points");
    }
    let repeat = if f.repeat_every.trim().is_empty() {
        Some(0)
    } else {
        num(&f.repeat_every, 0, 1000)
    };
    if repeat.is_none() {
        errors.add("repeat_every", "rules_points");
    }
    let action = super::points::Action::parse(&f.action);
    if action.is_none() {
        errors.add("action", "rules_choice");
    }
    let days = if action == Some(super::points::Action::Clear) {
        Some(0)
    } else {
        num(&f.days, 1, 365)
    };
    if days.is_none() {
        errors.add("days", "rules_days");
    }
    errors.into_result()?;
    let (Some(threshold), Some(repeat), Some(action), Some(days)) =
        (threshold, repeat, action, days)
    else {
        return Err(AppError::BadRequest("error.400.body"));
    };
    let note = format!("penalty node {} {threshold}", f.track);
    change(conn, me, &note, now, |c| {
        diesel::delete(
            pn::table
                .filter(pn::track.eq(&f.track))
                .filter(pn::threshold.eq(threshold)),
        )
        .execute(c)?;
        diesel::insert_into(pn::table)
            .values((
                pn::track.eq(&f.track),
                pn::threshold.eq(threshold),
                pn::repeat_every.eq(repeat),
                pn::action.eq(action.as_str()),
                pn::days.eq(days),
                pn::delist_all.eq(f.delist_all.is_some()),
            ))
            .execute(c)?;
        Ok(())
    })
}

pub fn delete_node(
    conn: &mut DbConn,
    me: &SessionUser,
    id: i64,
    now: NaiveDateTime,
) -> Result<i64, AppError> {
    change(conn, me, &format!("remove penalty node {id}"), now, |c| {
        if diesel::delete(pn::table.find(id)).execute(c)? == 0 {
            return Err(AppError::NotFound);
        }
        Ok(())
    })
}

// ---------- score rules ----------

/// Replaces the scoring rules (thresholds, weights, windows) with a validated JSON document.
pub fn save_score_rules(
    conn: &mut DbConn,
    me: &SessionUser,
    json: &str,
    now: NaiveDateTime,
) -> Result<i64, AppError> {
    require_admin(me)?;
    let rules: crate::dsr::rules::ScoreRules =
        serde_json::from_str(json).map_err(|_| AppError::field("score", "rules_json"))?;
    rules
        .validate()
        .map_err(|code| AppError::field("score", code))?;
    let text = serde_json::to_string(&rules).map_err(AppError::internal)?;
    change(conn, me, "score rules", now, |c| {
        diesel::insert_into(score_rules::table)
            .values((
                score_rules::params.eq(&text),
                score_rules::note.eq("rules editor"),
                score_rules::created_by.eq(Some(me.id)),
                score_rules::created_at.eq(now),
            ))
            .execute(c)?;
        Ok(())
    })
}

// ---------- reading ----------

/// A prohibited term as the editor lists it.
#[derive(Debug, Clone, Queryable)]
pub struct TermRow {
    pub id: i64,
    pub term: String,
    pub match_type: String,
    pub scope: String,
    pub category: Option<String>,
    pub severity: String,
    pub legal_basis: String,
}

pub fn terms(c: &mut DbConn) -> Result<Vec<TermRow>, AppError> {
    Ok(pt::table
        .left_join(categories::table.on(categories::id.nullable().eq(pt::scope_category_id)))
        .order(pt::id)
        .select((
            pt::id,
            pt::term,
            pt::match_type,
            pt::scope,
            categories::slug.nullable(),
            pt::severity,
            pt::legal_basis,
        ))
        .load(c)?)
}

/// A penalty node row with its id (for deletion).
pub fn node_rows(c: &mut DbConn) -> Result<Vec<(i64, super::points::Node)>, AppError> {
    let rows: Vec<(i64, String, i64, i64, String, i64, bool)> = pn::table
        .order((pn::track, pn::threshold))
        .select((
            pn::id,
            pn::track,
            pn::threshold,
            pn::repeat_every,
            pn::action,
            pn::days,
            pn::delist_all,
        ))
        .load(c)?;
    Ok(rows
        .into_iter()
        .filter_map(
            |(id, track, threshold, repeat_every, action, days, delist_all)| {
                Some((
                    id,
                    super::points::Node {
                        track,
                        threshold,
                        repeat_every,
                        action: super::points::Action::parse(&action)?,
                        days,
                        delist_all,
                    },
                ))
            },
        )
        .collect())
}

/// A rule-set version: (id, note, by handle, at, snapshot, diff lines).
#[derive(Debug, Clone)]
pub struct Version {
    pub id: i64,
    pub note: String,
    pub by: Option<String>,
    pub at: NaiveDateTime,
    pub snapshot: Snapshot,
    pub diff: Vec<String>,
}

pub fn versions(c: &mut DbConn, limit: i64) -> Result<Vec<Version>, AppError> {
    load_versions(c, None, limit)
}

pub fn version(c: &mut DbConn, id: i64) -> Result<Version, AppError> {
    load_versions(c, Some(id), 1)?
        .into_iter()
        .next()
        .ok_or(AppError::NotFound)
}

fn load_versions(c: &mut DbConn, id: Option<i64>, limit: i64) -> Result<Vec<Version>, AppError> {
    use crate::db::schema::users;
    let mut q = rule_sets::table
        .left_join(users::table.on(users::id.nullable().eq(rule_sets::created_by)))
        .order(rule_sets::id.desc())
        .limit(limit)
        .select((
            rule_sets::id,
            rule_sets::note,
            users::handle.nullable(),
            rule_sets::created_at,
            rule_sets::snapshot,
            rule_sets::diff,
        ))
        .into_boxed();
    if let Some(id) = id {
        q = q.filter(rule_sets::id.eq(id));
    }
    let rows: Vec<(i64, String, Option<String>, NaiveDateTime, String, String)> = q.load(c)?;
    Ok(rows
        .into_iter()
        .map(|(id, note, by, at, snap, diff)| Version {
            id,
            note,
            by,
            at,
            snapshot: serde_json::from_str(&snap).unwrap_or_default(),
            diff: diff.lines().map(str::to_string).collect(),
        })
        .collect())
}

/// What the current rules would flag in a text (title field) in a category: the hits.
pub fn test_text(
    c: &mut DbConn,
    text: &str,
    category: Option<i64>,
) -> Result<Vec<super::rules::Hit>, AppError> {
    let rules = super::rules::load(c)?;
    let mut path = Vec::new();
    let mut next = category;
    while let Some(id) = next {
        if path.contains(&id) {
            break;
        }
        path.push(id);
        next = categories::table
            .find(id)
            .select(categories::parent_id)
            .first::<Option<i64>>(c)
            .optional()?
            .flatten();
    }
    let listing = super::rules::Listing {
        texts: [
            ("title", text),
            ("subtitle", ""),
            ("description", ""),
            ("attributes", ""),
        ],
        category_path: path,
        required_qualifications: Vec::new(),
        shop_qualifications: Vec::new(),
        skus: vec![(String::new(), 100, None)],
    };
    Ok(rules.evaluate(&listing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_diff_lists_removed_and_added_lines_by_section() {
        let mut a = Snapshot::new();
        a.insert("params".into(), vec!["x = 1".into(), "y = 2".into()]);
        a.insert("terms".into(), vec!["最 | substring".into()]);
        let mut b = a.clone();
        b.insert("params".into(), vec!["x = 1".into(), "y = 3".into()]);
        b.insert("nodes".into(), vec!["general 12".into()]);
        assert_eq!(
            diff(&a, &b),
            vec![
                "+ [nodes] general 12".to_string(),
                "- [params] y = 2".to_string(),
                "+ [params] y = 3".to_string(),
            ]
        );
        assert!(diff(&a, &a).is_empty());
    }
}
