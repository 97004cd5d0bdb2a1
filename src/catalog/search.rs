//! The search index: character n-grams of listed products' titles and subtitles. Chinese has
//! no spaces, so instead of words we index every pair of neighbouring letters (and each CJK
//! character alone); a query matches the products that hold all of its grams, and the exact
//! substring is then checked. Portable across SQLite and PostgreSQL, no tokenizer needed.

use std::collections::BTreeSet;

use diesel::prelude::*;

use crate::db::schema::search_grams as sg;
use crate::db::DbConn;
use crate::error::AppError;

pub fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// Runs of letters and digits, lower-cased.
fn runs(text: &str) -> Vec<Vec<char>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    for c in text.to_lowercase().chars() {
        if c.is_alphanumeric() {
            cur.push(c);
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The grams a text is indexed under: bigrams of every run, and single CJK characters.
pub fn grams(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for run in runs(text) {
        for w in run.windows(2) {
            out.insert(w.iter().collect());
        }
        for c in run.iter().filter(|c| is_cjk(**c)) {
            out.insert(c.to_string());
        }
    }
    out
}

/// The grams every match of a query must have; None when the query has none (a lone latin
/// letter), and the caller falls back to scanning.
pub fn query_grams(q: &str) -> Option<Vec<String>> {
    let mut out = BTreeSet::new();
    for run in runs(q) {
        if run.len() >= 2 {
            for w in run.windows(2) {
                out.insert(w.iter().collect::<String>());
            }
        } else if is_cjk(run[0]) {
            out.insert(run[0].to_string());
        }
    }
    (!out.is_empty()).then(|| out.into_iter().collect())
}

/// Replaces a product's grams (called whenever it becomes listed).
pub fn reindex(
    c: &mut DbConn,
    product_id: i64,
    title: &str,
    subtitle: &str,
) -> Result<(), AppError> {
    diesel::delete(sg::table.filter(sg::product_id.eq(product_id))).execute(c)?;
    let rows: Vec<_> = grams(&format!("{title} {subtitle}"))
        .into_iter()
        .map(|g| (sg::gram.eq(g), sg::product_id.eq(product_id)))
        .collect();
    for chunk in rows.chunks(500) {
        crate::per_backend!(c, |c| diesel::insert_into(sg::table)
            .values(chunk)
            .execute(c))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grams_of_mixed_text() {
        let g = grams("纯棉T恤 Silk");
        for want in ["纯棉", "棉t", "t恤", "纯", "棉", "恤", "si", "il", "lk"] {
            assert!(g.contains(want), "{want} in {g:?}");
        }
        assert!(!g.contains("恤 "), "no grams across separators");
        assert_eq!(query_grams("T恤"), Some(vec!["t恤".to_string()]));
        assert_eq!(query_grams("茶"), Some(vec!["茶".to_string()]));
        assert_eq!(query_grams("x"), None);
        assert_eq!(query_grams("  "), None);
        assert_eq!(query_grams("亚麻 衬衫").map(|v| v.len()), Some(2));
    }
}
