//! One-shot flash messages carried in a cookie across a redirect. The cookie holds only a level
//! and an i18n key; unknown keys are ignored, so a forged cookie can not inject text.

use actix_web::{HttpMessage, HttpRequest, HttpResponse};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashLevel {
    Success,
    Info,
    Error,
}

impl FlashLevel {
    pub fn css(self) -> &'static str {
        match self {
            FlashLevel::Success => "success",
            FlashLevel::Info => "info",
            FlashLevel::Error => "error",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Flash {
    pub level: FlashLevel,
    pub key: String,
}

impl Flash {
    pub fn css(&self) -> &'static str {
        self.level.css()
    }
}

pub fn parse(value: &str) -> Option<Flash> {
    let (level, key) = value.split_once(':')?;
    let level = match level {
        "s" => FlashLevel::Success,
        "i" => FlashLevel::Info,
        "e" => FlashLevel::Error,
        _ => return None,
    };
    crate::i18n::has_key(key).then(|| Flash {
        level,
        key: key.to_string(),
    })
}

/// Adds a flash cookie to a response.
pub fn set(resp: &mut HttpResponse, level: FlashLevel, key: &str) {
    let l = match level {
        FlashLevel::Success => "s",
        FlashLevel::Info => "i",
        FlashLevel::Error => "e",
    };
    let c = super::cookie(super::FLASH_COOKIE, format!("{l}:{key}"), false, None);
    let _ = resp.add_cookie(&c);
}

/// The flash message of this request (read by the session middleware), if any.
pub fn current(req: &HttpRequest) -> Option<Flash> {
    req.extensions().get::<Flash>().cloned()
}
