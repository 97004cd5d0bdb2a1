//! Every user-visible string is in both locale files, and every key the code uses exists.

use std::collections::BTreeSet;

use haodian::i18n::{parse_catalog, EN_SOURCE, ZH_SOURCE};

fn keys(src: &'static str) -> BTreeSet<&'static str> {
    parse_catalog(src).keys().copied().collect()
}

#[test]
fn both_locales_have_the_same_keys_and_no_empty_values() {
    let zh = keys(ZH_SOURCE);
    let en = keys(EN_SOURCE);
    let only_zh: Vec<_> = zh.difference(&en).collect();
    let only_en: Vec<_> = en.difference(&zh).collect();
    assert!(
        only_zh.is_empty() && only_en.is_empty(),
        "missing in en: {only_zh:?}; missing in zh-CN: {only_en:?}"
    );
    for src in [ZH_SOURCE, EN_SOURCE] {
        for line in src
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (k, v) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("not a key = value line: {line}"));
            assert!(!v.trim().is_empty(), "empty value for {}", k.trim());
        }
        assert_eq!(
            parse_catalog(src).len(),
            src.lines()
                .filter(|l| l.contains('=') && !l.trim_start().starts_with('#'))
                .count(),
            "duplicate keys"
        );
    }
}

/// Quoted strings in a text that look like keys of the given prefixes.
fn quoted_keys(text: &str) -> Vec<String> {
    const PREFIXES: &[&str] = &[
        "site.",
        "nav.",
        "home.",
        "dashboard.",
        "tile.",
        "signup.",
        "login.",
        "field.",
        "verify.",
        "reset.",
        "settings.",
        "email_change.",
        "token.",
        "email.",
        "flash.",
        "validation.",
        "error.",
        "mail.",
        "cart.",
        "checkout.",
        "address.",
        "pay.",
        "order.",
        "carrier.",
        "refund.",
        "complaint.",
        "overview.",
        "rating.",
        "dsr.",
        "dsrpage.",
        "violation.",
        "penalty.",
        "appeal.",
        "governance.",
    ];
    text.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| PREFIXES.iter().any(|p| s.starts_with(p)))
        .filter(|s| {
            s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
        })
        .filter(|s| !s.ends_with('.') && !s.ends_with(".html"))
        .map(str::to_string)
        .collect()
}

/// Validation codes the code can produce.
fn validation_codes(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for marker in [
        "ValidationError::new(\"",
        "code = \"",
        "Err(\"",
        "AppError::field(\"",
    ] {
        for part in text.split(marker).skip(1) {
            let part = if marker == "AppError::field(\"" {
                // The code is on the same line as the field name.
                let line = part.lines().next().unwrap_or("");
                line.split_once("\", \"").map(|x| x.1).unwrap_or("")
            } else {
                part
            };
            let code: String = part
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !code.is_empty() {
                out.push(code);
            }
        }
    }
    for part in text.split(".add(\"").skip(1) {
        let line = part.lines().next().unwrap_or("");
        if let Some((_, rest)) = line.split_once("\", \"") {
            out.push(
                rest.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect(),
            );
        }
    }
    out
}

fn files(dir: &str, ext: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dir)];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap().filter_map(Result::ok) {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == ext) {
                out.push((
                    path.display().to_string(),
                    std::fs::read_to_string(&path).unwrap(),
                ));
            }
        }
    }
    out
}

#[test]
fn every_key_used_in_templates_and_code_exists() {
    let zh = keys(ZH_SOURCE);
    let mut missing = Vec::new();
    let mut used = 0;
    for (path, text) in files("templates", "html")
        .into_iter()
        .chain(files("src", "rs"))
    {
        for key in quoted_keys(&text) {
            used += 1;
            if !zh.contains(key.as_str()) {
                missing.push(format!("{path}: {key}"));
            }
        }
        if path.ends_with(".rs") {
            for code in validation_codes(&text) {
                used += 1;
                if !zh.contains(format!("validation.{code}").as_str()) {
                    missing.push(format!("{path}: validation.{code}"));
                }
            }
        }
    }
    // Keys built at run time.
    for status in [400, 403, 404, 405, 409, 413, 422, 429, 500, 503] {
        for part in ["title", "body"] {
            let k = format!("error.{status}.{part}");
            if !zh.contains(k.as_str()) {
                missing.push(k);
            }
        }
    }
    for area in ["account", "merchant", "creator", "admin"] {
        for part in ["title", "lead"] {
            let k = format!("dashboard.{area}.{part}");
            if !zh.contains(k.as_str()) {
                missing.push(k);
            }
        }
    }
    assert!(used > 100, "the scan found the keys ({used})");
    assert!(
        missing.is_empty(),
        "keys missing from the locale files:\n{}",
        missing.join("\n")
    );
}
