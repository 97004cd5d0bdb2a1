//! Translations: zh-CN and en, from `locales/*.txt` compiled into the binary.
//!
//! File format: one `key = value` per line, `#` starts a comment line, `{name}` is a
//! placeholder. A test checks both files have exactly the same keys and that every key the
//! templates and code use exists.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Locale {
    #[default]
    ZhCn,
    En,
}

pub const LOCALES: [Locale; 2] = [Locale::ZhCn, Locale::En];

impl Locale {
    pub fn code(self) -> &'static str {
        match self {
            Locale::ZhCn => "zh-CN",
            Locale::En => "en",
        }
    }
    /// The `lang` attribute of `<html>`.
    pub fn html_lang(self) -> &'static str {
        match self {
            Locale::ZhCn => "zh-CN",
            Locale::En => "en",
        }
    }
    /// Parses a stored or posted code ("zh-CN", "zh", "en", "en-US", case-insensitive).
    pub fn parse(code: &str) -> Option<Locale> {
        let c = code.trim().to_ascii_lowercase();
        if c == "zh" || c.starts_with("zh-") || c.starts_with("zh_") {
            Some(Locale::ZhCn)
        } else if c == "en" || c.starts_with("en-") || c.starts_with("en_") {
            Some(Locale::En)
        } else {
            None
        }
    }
    /// Picks the best supported language from an Accept-Language header, honouring q-values.
    pub fn from_accept_language(header: &str) -> Option<Locale> {
        let mut best: Option<(f32, Locale)> = None;
        for part in header.split(',') {
            let mut it = part.split(';');
            let tag = it.next().unwrap_or("").trim();
            let q = it
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            if let Some(l) = Locale::parse(tag) {
                if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                    best = Some((q, l));
                }
            }
        }
        best.map(|(_, l)| l)
    }
    fn catalog(self) -> &'static HashMap<&'static str, Cow<'static, str>> {
        match self {
            Locale::ZhCn => &ZH,
            Locale::En => &EN,
        }
    }
}

pub const ZH_SOURCE: &str = include_str!("../locales/zh-CN.txt");
pub const EN_SOURCE: &str = include_str!("../locales/en.txt");

static ZH: LazyLock<HashMap<&'static str, Cow<'static, str>>> =
    LazyLock::new(|| unescaped(parse_catalog(ZH_SOURCE)));
static EN: LazyLock<HashMap<&'static str, Cow<'static, str>>> =
    LazyLock::new(|| unescaped(parse_catalog(EN_SOURCE)));

/// Values with `\n` turned into line breaks once, at load (not on every lookup).
fn unescaped(
    catalog: HashMap<&'static str, &'static str>,
) -> HashMap<&'static str, Cow<'static, str>> {
    catalog
        .into_iter()
        .map(|(k, v)| {
            let v = if v.contains("\\n") {
                Cow::Owned(v.replace("\\n", "\n"))
            } else {
                Cow::Borrowed(v)
            };
            (k, v)
        })
        .collect()
}

/// Parses a catalog file. Lines without `=` are ignored (the key test reports them).
pub fn parse_catalog(src: &'static str) -> HashMap<&'static str, &'static str> {
    src.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect()
}

/// The translation of `key`, borrowed (a page looks up dozens); a missing key shows as the key
/// itself (and the test suite fails).
pub fn t(locale: Locale, key: &str) -> Cow<'_, str> {
    match locale.catalog().get(key) {
        Some(v) => Cow::Borrowed(v.as_ref()),
        None => Cow::Borrowed(key),
    }
}

/// Whether `key` exists in the catalog (used to accept only known flash keys).
pub fn has_key(key: &str) -> bool {
    ZH.contains_key(key)
}

/// The translation with `{name}` placeholders filled.
/// One pass over the text: a value is never searched for placeholders itself, and unknown
/// `{…}` stay as they are.
pub fn tf(locale: Locale, key: &str, args: &[(&str, &str)]) -> String {
    let text = t(locale, key);
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest: &str = &text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after.find('}').and_then(|close| {
            let name = &after[..close];
            args.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v, close))
        });
        match value {
            Some((v, close)) => {
                out.push_str(v);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Formats 分 as ¥12.34.
pub fn money(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let a = fen.unsigned_abs();
    format!("{sign}¥{}.{:02}", a / 100, a % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tf_fills_each_placeholder_once_and_leaves_the_rest() {
        assert_eq!(
            tf(Locale::ZhCn, "rating.count", &[("count", "{count}")]),
            "{count} 条评价"
        );
        assert_eq!(
            tf(Locale::ZhCn, "rating.count", &[("count", "7")]),
            "7 条评价"
        );
        assert_eq!(
            tf(Locale::En, "no.such {x} key", &[("x", "1")]),
            "no.such 1 key"
        );
        assert_eq!(tf(Locale::En, "a {y} b {", &[("x", "1")]), "a {y} b {");
    }

    #[test]
    fn accept_language_honours_quality() {
        assert_eq!(
            Locale::from_accept_language("fr;q=1, en-US;q=0.8, zh-CN;q=0.9"),
            Some(Locale::ZhCn)
        );
        assert_eq!(
            Locale::from_accept_language("en-GB,en;q=0.9"),
            Some(Locale::En)
        );
        assert_eq!(Locale::from_accept_language("fr, de"), None);
        assert_eq!(
            Locale::from_accept_language("zh;q=0, en;q=0.1"),
            Some(Locale::En)
        );
    }

    #[test]
    fn placeholders_and_money() {
        assert_eq!(money(1234), "¥12.34");
        assert_eq!(money(5), "¥0.05");
        assert_eq!(money(-250), "-¥2.50");
        let s = tf(Locale::En, "error.retry_after", &[("seconds", "30")]);
        assert!(s.contains("30"), "{s}");
    }
}
