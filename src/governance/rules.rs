//! The rules engine for listings. Rules are data: prohibited terms (substring, whole word or
//! regular expression; scoped to or away from a category; block, manual review or warn, each
//! with its legal basis), the categories' qualification requirements and price sanity
//! parameters. Every evaluation names the rule-set version it used and every hit.

use diesel::prelude::*;
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::db::schema::{prohibited_terms as pt, rule_params, rule_sets};
use crate::db::DbConn;
use crate::error::AppError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warn,
    Review,
    Block,
}

impl Severity {
    pub fn parse(s: &str) -> Severity {
        match s {
            "block" => Severity::Block,
            "review" => Severity::Review,
            _ => Severity::Warn,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warn => "warn",
            Severity::Review => "review",
            Severity::Block => "block",
        }
    }
}

/// One rule that matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hit {
    /// e.g. `term:12`, `price:ceiling`, `qualification:food_license`.
    pub rule: String,
    /// The form field it concerns: title, subtitle, description, attributes, skus, category_id.
    pub field: String,
    /// The matched text (for terms) or the offending value.
    pub matched: String,
    pub severity: Severity,
    pub basis: String,
    /// i18n key of the explanation shown to the merchant.
    pub message: String,
}

#[derive(Debug, Clone)]
struct Term {
    id: i64,
    term: String,
    lower: String,
    match_type: String,
    scope: String,
    scope_category_id: Option<i64>,
    severity: Severity,
    basis: String,
    regex: Option<Regex>,
}

/// The rules in force: the newest rule-set version and its data.
#[derive(Debug, Clone)]
pub struct RuleSet {
    pub version: i64,
    terms: Vec<Term>,
    pub price_ceiling_fen: i64,
    pub discount_floor_percent: i64,
}

pub fn load(conn: &mut DbConn) -> Result<RuleSet, AppError> {
    let version: i64 = rule_sets::table
        .select(diesel::dsl::max(rule_sets::id))
        .first::<Option<i64>>(conn)?
        .unwrap_or(0);
    type Row = (i64, String, String, String, Option<i64>, String, String);
    let rows: Vec<Row> = pt::table
        .order(pt::id)
        .select((
            pt::id,
            pt::term,
            pt::match_type,
            pt::scope,
            pt::scope_category_id,
            pt::severity,
            pt::legal_basis,
        ))
        .load(conn)?;
    let terms = rows
        .into_iter()
        .map(
            |(id, term, match_type, scope, scope_category_id, severity, basis)| Term {
                lower: term.to_lowercase(),
                regex: (match_type == "regex")
                    .then(|| Regex::new(&format!("(?i){term}")).ok())
                    .flatten(),
                id,
                term,
                match_type,
                scope,
                scope_category_id,
                severity: Severity::parse(&severity),
                basis,
            },
        )
        .collect();
    let params: Vec<(String, i64)> = rule_params::table
        .select((rule_params::key, rule_params::value))
        .load(conn)?;
    let param = |k: &str, d: i64| {
        params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| *v)
            .unwrap_or(d)
    };
    Ok(RuleSet {
        version,
        terms,
        price_ceiling_fen: param("price_ceiling_fen", 100_000_000),
        discount_floor_percent: param("discount_floor_percent", 10),
    })
}

/// What a listing offers to the checks.
pub struct Listing<'a> {
    pub texts: [(&'static str, &'a str); 4],
    /// The product's category and its ancestors.
    pub category_path: Vec<i64>,
    /// Qualification kinds the category path requires, and those the shop holds.
    pub required_qualifications: Vec<String>,
    pub shop_qualifications: Vec<String>,
    /// (code, price, list price) per SKU.
    pub skus: Vec<(String, i64, Option<i64>)>,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() && c.is_ascii()
}

/// Byte ranges where `term` occurs in `text` under the term's match type.
fn find(term: &Term, text: &str) -> Option<String> {
    match term.match_type.as_str() {
        "regex" => term
            .regex
            .as_ref()?
            .find(text)
            .map(|m| m.as_str().to_string()),
        kind => {
            let lower = text.to_lowercase();
            let mut from = 0;
            while let Some(pos) = lower[from..].find(&term.lower) {
                let start = from + pos;
                let end = start + term.lower.len();
                let before_ok = lower[..start]
                    .chars()
                    .next_back()
                    .is_none_or(|c| !is_word_char(c));
                let after_ok = lower[end..].chars().next().is_none_or(|c| !is_word_char(c));
                if kind != "word" || (before_ok && after_ok) {
                    return Some(text.get(start..end).unwrap_or(&term.term).to_string());
                }
                from = end;
            }
            None
        }
    }
}

impl RuleSet {
    fn applies(&self, term: &Term, path: &[i64]) -> bool {
        match (term.scope.as_str(), term.scope_category_id) {
            ("only", Some(c)) => path.contains(&c),
            ("except", Some(c)) => !path.contains(&c),
            _ => true,
        }
    }

    /// Every rule the listing breaks.
    pub fn evaluate(&self, l: &Listing<'_>) -> Vec<Hit> {
        let mut hits = Vec::new();
        for (field, text) in l.texts {
            for term in self
                .terms
                .iter()
                .filter(|t| self.applies(t, &l.category_path))
            {
                if let Some(matched) = find(term, text) {
                    hits.push(Hit {
                        rule: format!("term:{}", term.id),
                        field: field.to_string(),
                        matched,
                        severity: term.severity,
                        basis: term.basis.clone(),
                        message: "rule.prohibited_term".into(),
                    });
                }
            }
        }
        for kind in &l.required_qualifications {
            if !l.shop_qualifications.contains(kind) {
                hits.push(Hit {
                    rule: format!("qualification:{kind}"),
                    field: "category_id".into(),
                    matched: kind.clone(),
                    severity: Severity::Block,
                    basis: "《电子商务法》第十二条（依法取得相关行政许可）".into(),
                    message: "rule.qualification_missing".into(),
                });
            }
        }
        if l.skus.is_empty() {
            hits.push(price_hit("price:no_skus", "", "rule.no_skus"));
        }
        for (code, price, list) in &l.skus {
            if *price <= 0 {
                hits.push(price_hit("price:positive", code, "rule.price_positive"));
            } else if *price > self.price_ceiling_fen {
                hits.push(price_hit("price:ceiling", code, "rule.price_ceiling"));
            }
            if let Some(list) = list {
                if list < price {
                    hits.push(price_hit(
                        "price:list_below_price",
                        code,
                        "rule.list_below_price",
                    ));
                } else if *price > 0 && price * 100 < list * self.discount_floor_percent {
                    hits.push(price_hit(
                        "price:discount_floor",
                        code,
                        "rule.discount_floor",
                    ));
                }
            }
        }
        hits
    }
}

fn price_hit(rule: &str, code: &str, message: &str) -> Hit {
    Hit {
        rule: rule.into(),
        field: "skus".into(),
        matched: code.into(),
        severity: Severity::Block,
        basis: "《价格法》第十四条、平台价格规则".into(),
        message: message.into(),
    }
}

/// The listing outcome of a set of hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    ManualReview,
    NeedsChanges,
}

pub fn outcome(hits: &[Hit]) -> Outcome {
    match hits.iter().map(|h| h.severity).max() {
        Some(Severity::Block) => Outcome::NeedsChanges,
        Some(Severity::Review) => Outcome::ManualReview,
        _ => Outcome::Pass,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(id: i64, t: &str, kind: &str, sev: Severity) -> Term {
        Term {
            id,
            term: t.into(),
            lower: t.to_lowercase(),
            match_type: kind.into(),
            scope: "all".into(),
            scope_category_id: None,
            severity: sev,
            basis: "b".into(),
            regex: (kind == "regex").then(|| Regex::new(&format!("(?i){t}")).unwrap()),
        }
    }

    fn rules(terms: Vec<Term>) -> RuleSet {
        RuleSet {
            version: 1,
            terms,
            price_ceiling_fen: 1_000_000,
            discount_floor_percent: 10,
        }
    }

    fn listing<'a>(title: &'a str, skus: Vec<(String, i64, Option<i64>)>) -> Listing<'a> {
        Listing {
            texts: [
                ("title", title),
                ("subtitle", ""),
                ("description", ""),
                ("attributes", ""),
            ],
            category_path: vec![1],
            required_qualifications: vec![],
            shop_qualifications: vec![],
            skus,
        }
    }

    #[test]
    fn match_types() {
        let r = rules(vec![
            term(1, "最佳", "substring", Severity::Block),
            term(2, "best", "word", Severity::Block),
            term(3, r"\d{2,3}天(瘦|减)\d+斤", "regex", Severity::Block),
        ]);
        let ok = vec![("A".to_string(), 100, None)];
        assert_eq!(
            r.evaluate(&listing("全网最佳口感", ok.clone()))[0].matched,
            "最佳"
        );
        assert_eq!(
            r.evaluate(&listing("The BEST tea", ok.clone()))[0].matched,
            "BEST"
        );
        assert!(
            r.evaluate(&listing("bestseller list", ok.clone()))
                .is_empty(),
            "whole words only"
        );
        assert_eq!(
            r.evaluate(&listing("30天瘦10斤", ok.clone()))[0].rule,
            "term:3"
        );
        assert!(r.evaluate(&listing("好茶", ok)).is_empty());
    }

    #[test]
    fn scope_and_outcome() {
        let mut t = term(1, "治疗", "substring", Severity::Review);
        t.scope = "except".into();
        t.scope_category_id = Some(9);
        let r = rules(vec![t]);
        let mut l = listing("治疗仪", vec![("A".into(), 100, None)]);
        assert_eq!(outcome(&r.evaluate(&l)), Outcome::ManualReview);
        l.category_path = vec![10, 9];
        assert_eq!(
            outcome(&r.evaluate(&l)),
            Outcome::Pass,
            "allowed in the health category"
        );
    }

    #[test]
    fn price_sanity() {
        let r = rules(vec![]);
        let hits = |skus| {
            r.evaluate(&listing("t", skus))
                .into_iter()
                .map(|h| h.rule)
                .collect::<Vec<_>>()
        };
        assert_eq!(hits(vec![("A".into(), 0, None)]), vec!["price:positive"]);
        assert_eq!(
            hits(vec![("A".into(), 2_000_000, None)]),
            vec!["price:ceiling"]
        );
        assert_eq!(
            hits(vec![("A".into(), 500, Some(400))]),
            vec!["price:list_below_price"]
        );
        assert_eq!(
            hits(vec![("A".into(), 99, Some(1000))]),
            vec!["price:discount_floor"]
        );
        assert!(
            hits(vec![("A".into(), 100, Some(1000))]).is_empty(),
            "exactly at the floor"
        );
        assert_eq!(hits(vec![]), vec!["price:no_skus"]);
        let mut l = listing("t", vec![("A".into(), 100, None)]);
        l.required_qualifications = vec!["food_license".into()];
        assert_eq!(outcome(&r.evaluate(&l)), Outcome::NeedsChanges);
        l.shop_qualifications = vec!["food_license".into()];
        assert_eq!(outcome(&r.evaluate(&l)), Outcome::Pass);
    }
}
