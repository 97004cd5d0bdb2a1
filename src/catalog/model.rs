//! Catalog rows and value types.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{products, skus};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = products)]
pub struct Product {
    pub id: i64,
    pub shop_id: i64,
    pub category_id: i64,
    pub title: String,
    pub subtitle: String,
    pub description: String,
    pub attributes: String,
    pub variant_spec: String,
    pub status: String,
    pub status_reason: String,
    pub delisted_by_platform: bool,
    pub price_min: Option<i64>,
    pub price_max: Option<i64>,
    pub sales_count: i64,
    pub cover_media_id: Option<i64>,
    pub listed_at: Option<NaiveDateTime>,
    /// The images as "full:thumb,…" in display order (see [`gallery_text`]).
    pub gallery: String,
}

/// The `gallery` column's text for images given as (full, thumbnail) media ids.
pub fn gallery_text(images: impl IntoIterator<Item = (i64, Option<i64>)>) -> String {
    images
        .into_iter()
        .map(|(full, thumb)| match thumb {
            Some(t) => format!("{full}:{t}"),
            None => format!("{full}:"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

impl Product {
    /// The images as (full, thumbnail) media ids in display order; the first is the cover.
    pub fn gallery(&self) -> Vec<(i64, Option<i64>)> {
        self.gallery
            .split(',')
            .filter_map(|item| {
                let (full, thumb) = item.split_once(':')?;
                Some((full.parse().ok()?, thumb.parse().ok()))
            })
            .collect()
    }
}

/// "¥12.00" or "¥12.00 – ¥30.00"; empty before prices are set.
fn price_range(min: Option<i64>, max: Option<i64>) -> String {
    match (min, max) {
        (Some(a), Some(b)) if a == b => crate::i18n::money(a),
        (Some(a), Some(b)) => format!("{} – {}", crate::i18n::money(a), crate::i18n::money(b)),
        _ => String::new(),
    }
}

/// What a product grid shows of a product (storefront, profile, search): only these columns
/// are read, so a page of cards does not load descriptions or parse timestamps.
/// Deserialize: the storefront reads its first page of cards as JSON rows
/// ([`crate::db::json_rows`]), in the order of these fields.
#[derive(Debug, Clone, Queryable, Selectable, serde::Deserialize)]
#[diesel(table_name = products)]
pub struct ProductCard {
    pub id: i64,
    pub title: String,
    pub price_min: Option<i64>,
    pub price_max: Option<i64>,
    pub sales_count: i64,
    pub cover_media_id: Option<i64>,
}

impl ProductCard {
    pub fn price_range(&self) -> String {
        price_range(self.price_min, self.price_max)
    }
}

impl Product {
    pub fn price_range(&self) -> String {
        price_range(self.price_min, self.price_max)
    }
    pub fn description_lines(&self) -> Vec<&str> {
        self.description.lines().collect()
    }
    /// `key: value` lines of the attributes.
    pub fn attribute_pairs(&self) -> Vec<(&str, &str)> {
        self.attributes
            .lines()
            .filter_map(|l| l.split_once(':').or_else(|| l.split_once('：')))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect()
    }
}

/// Deserialize: the product page reads SKUs as JSON rows ([`crate::db::json_rows`]), in the
/// order of these fields.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable, serde::Deserialize)]
#[diesel(table_name = skus)]
pub struct Sku {
    pub id: i64,
    pub product_id: i64,
    pub shop_id: i64,
    pub code: String,
    pub attrs: String,
    pub price_fen: i64,
    pub list_price_fen: Option<i64>,
    pub stock: i64,
    pub position: i64,
}

impl Sku {
    pub fn price(&self) -> String {
        crate::i18n::money(self.price_fen)
    }
    pub fn list_price(&self) -> String {
        self.list_price_fen
            .map(crate::i18n::money)
            .unwrap_or_default()
    }
    /// Price as typed in a form: "12.34".
    pub fn price_input(&self) -> String {
        yuan(self.price_fen)
    }
    pub fn list_price_input(&self) -> String {
        self.list_price_fen.map(yuan).unwrap_or_default()
    }
    /// The variant label, e.g. "红 / M".
    pub fn label(&self) -> String {
        variant_label(&self.attrs)
    }
}

/// A SKU's variant label from its stored attributes: "颜色:红 / 尺码:M" → "红 / M".
pub fn variant_label(attrs: &str) -> String {
    attrs
        .split(" / ")
        .map(|p| p.split_once(':').map(|(_, v)| v).unwrap_or(p))
        .collect::<Vec<_>>()
        .join(" / ")
}

/// 分 as a plain decimal for form inputs (no currency sign).
pub fn yuan(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, (fen % 100).abs())
}

/// Parses a price typed in yuan ("12", "12.3", "12.34", "¥12.34") into 分.
pub fn parse_yuan(s: &str) -> Option<i64> {
    let s = s.trim().trim_start_matches(['¥', '￥']).trim();
    if s.is_empty() || s.starts_with('-') {
        return None;
    }
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty()
        || whole.len() > 9
        || frac.len() > 2
        || !whole.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let w: i64 = whole.parse().ok()?;
    let f: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<2}").parse().ok()?
    };
    Some(w * 100 + f)
}

/// Variant dimensions: up to two, each a name and up to 20 values, e.g. `颜色: 红, 蓝`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantSpec(pub Vec<(String, Vec<String>)>);

pub const MAX_SKUS: usize = 100;

impl VariantSpec {
    pub fn parse(text: &str) -> Result<VariantSpec, &'static str> {
        let mut dims = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (name, values) = line
                .split_once(':')
                .or_else(|| line.split_once('：'))
                .ok_or("variant_format")?;
            let name = name.trim().to_string();
            let values: Vec<String> = values
                .split([',', '，', '、'])
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .collect();
            if name.is_empty()
                || name.chars().count() > 10
                || values.is_empty()
                || values.len() > 20
            {
                return Err("variant_format");
            }
            if values
                .iter()
                .any(|v| v.chars().count() > 20 || v.contains('/') || v.contains(':'))
            {
                return Err("variant_format");
            }
            let mut seen = values.clone();
            seen.sort();
            seen.dedup();
            if seen.len() != values.len() {
                return Err("variant_duplicate");
            }
            dims.push((name, values));
        }
        if dims.len() > 2 {
            return Err("variant_too_many");
        }
        let spec = VariantSpec(dims);
        if spec.combinations().len() > MAX_SKUS {
            return Err("variant_too_many");
        }
        Ok(spec)
    }

    /// Every combination as an attrs string, e.g. `颜色:红 / 尺码:M`; one empty combination
    /// when there are no dimensions (a single-SKU product).
    pub fn combinations(&self) -> Vec<String> {
        let mut out = vec![String::new()];
        for (name, values) in &self.0 {
            out = out
                .iter()
                .flat_map(|prefix| {
                    values.iter().map(move |v| {
                        if prefix.is_empty() {
                            format!("{name}:{v}")
                        } else {
                            format!("{prefix} / {name}:{v}")
                        }
                    })
                })
                .collect();
        }
        out
    }

    pub fn to_text(&self) -> String {
        self.0
            .iter()
            .map(|(n, v)| format!("{n}: {}", v.join(", ")))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gallery_text_round_trips() {
        let images = vec![(7, Some(8)), (9, None), (11, Some(12))];
        let text = gallery_text(images.clone());
        assert_eq!(text, "7:8,9:,11:12");
        let mut p = Product {
            id: 1,
            shop_id: 1,
            category_id: 1,
            title: String::new(),
            subtitle: String::new(),
            description: String::new(),
            attributes: String::new(),
            variant_spec: String::new(),
            status: String::new(),
            status_reason: String::new(),
            delisted_by_platform: false,
            price_min: None,
            price_max: None,
            sales_count: 0,
            cover_media_id: None,
            listed_at: None,
            gallery: text,
        };
        assert_eq!(p.gallery(), images);
        p.gallery = String::new();
        assert!(p.gallery().is_empty());
    }

    #[test]
    fn prices() {
        assert_eq!(parse_yuan("12"), Some(1200));
        assert_eq!(parse_yuan("12.3"), Some(1230));
        assert_eq!(parse_yuan("¥12.34"), Some(1234));
        assert_eq!(parse_yuan("0.05"), Some(5));
        assert_eq!(parse_yuan("12.345"), None);
        assert_eq!(parse_yuan("-1"), None);
        assert_eq!(parse_yuan("1e5"), None);
        assert_eq!(parse_yuan(""), None);
        assert_eq!(parse_yuan("9999999999"), None);
        assert_eq!(yuan(1234), "12.34");
        assert_eq!(yuan(5), "0.05");
    }

    #[test]
    fn variant_grid() {
        let s = VariantSpec::parse("颜色: 红, 蓝\n尺码：S，M，L").unwrap();
        let c = s.combinations();
        assert_eq!(c.len(), 6);
        assert_eq!(c[0], "颜色:红 / 尺码:S");
        assert_eq!(
            VariantSpec::parse("").unwrap().combinations(),
            vec![String::new()]
        );
        assert_eq!(VariantSpec::parse("颜色: 红, 红"), Err("variant_duplicate"));
        assert_eq!(
            VariantSpec::parse("a: 1\nb: 2\nc: 3"),
            Err("variant_too_many")
        );
        assert_eq!(VariantSpec::parse("no colon"), Err("variant_format"));
        let big = format!(
            "a: {}\nb: {}",
            (0..11).map(|i| i.to_string()).collect::<Vec<_>>().join(","),
            (0..10).map(|i| i.to_string()).collect::<Vec<_>>().join(",")
        );
        assert_eq!(VariantSpec::parse(&big), Err("variant_too_many"));
    }
}
