//! CSRF protection: a synchronizer token per session, checked in one extractor.
//!
//! The token is HMAC-SHA256(server secret, the session's secret cookie value): for a signed-in
//! user the session token, for a visitor the visitor id. It is never stored in a cookie by
//! itself, it changes at login and dies with the session at logout. The session middleware puts
//! the expected value into the request extensions; [`CsrfForm`] and [`CsrfMultipart`] are the
//! only ways a POST handler reads its body, and both refuse a missing or foreign token (403).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use actix_web::{dev::Payload, web, FromRequest, HttpMessage, HttpRequest};
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use sha2::Sha256;

use crate::error::AppError;

/// The token a POST from this request must carry.
#[derive(Debug, Clone)]
pub struct CsrfExpected(pub String);

pub fn token_for(secret: &[u8], binding: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        // HMAC accepts keys of any length; this branch is unreachable in practice.
        Err(_) => return String::new(),
    };
    mac.update(b"haodian-csrf:");
    mac.update(binding.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Constant-time string comparison.
pub fn ct_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn check(req: &HttpRequest, given: Option<&str>) -> Result<(), AppError> {
    let expected = req
        .extensions()
        .get::<CsrfExpected>()
        .map(|e| e.0.clone())
        .unwrap_or_default();
    match given {
        Some(g) if !expected.is_empty() && ct_eq(g, &expected) => Ok(()),
        _ => Err(AppError::Csrf),
    }
}

#[derive(serde::Deserialize)]
struct TokenOnly {
    csrf_token: Option<String>,
}

/// A urlencoded form whose `csrf_token` field has been verified.
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for CsrfForm<T> {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let body = read_limited(&mut payload, super::FORM_LIMIT).await?;
            // Token first: a forged request learns nothing about the form's validation.
            let token: TokenOnly =
                serde_urlencoded::from_bytes(&body).unwrap_or(TokenOnly { csrf_token: None });
            check(&req, token.csrf_token.as_deref())?;
            serde_urlencoded::from_bytes::<T>(&body)
                .map(CsrfForm)
                .map_err(|_| {
                    // The error text may quote what was typed (a password): log only that it failed.
                    tracing::debug!("form did not parse");
                    AppError::BadRequest("error.bad_form")
                })
        })
    }
}

async fn read_limited(payload: &mut Payload, limit: usize) -> Result<web::BytesMut, AppError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| AppError::BadRequest("error.bad_form"))?;
        if body.len() + chunk.len() > limit {
            return Err(AppError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// One uploaded file of a multipart form.
#[derive(Debug, Clone)]
pub struct Upload {
    pub field: String,
    pub filename: String,
    pub bytes: Vec<u8>,
}

/// A multipart form (text fields and files, `limit` bytes in all) with a verified token.
#[derive(Debug, Default)]
pub struct CsrfMultipart {
    pub fields: HashMap<String, String>,
    pub files: Vec<Upload>,
}

/// Total size limit for multipart bodies; the route-specific file limit is checked by services.
pub const MULTIPART_LIMIT: usize = 8 * 1024 * 1024;

impl CsrfMultipart {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
    pub fn file(&self, name: &str) -> Option<&Upload> {
        self.files
            .iter()
            .find(|f| f.field == name && !f.bytes.is_empty())
    }
}

impl FromRequest for CsrfMultipart {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let is_multipart = req
            .headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
        let mut mp = actix_multipart::Multipart::new(req.headers(), payload.take());
        Box::pin(async move {
            // A body of another kind carries no token we could read: refuse it as forged.
            if !is_multipart {
                return Err(AppError::Csrf);
            }
            let mut out = CsrfMultipart::default();
            let mut total = 0usize;
            while let Some(field) = mp.next().await {
                let mut field = field.map_err(|_| AppError::BadRequest("error.bad_form"))?;
                let name = field.name().unwrap_or_default().to_string();
                let filename = field
                    .content_disposition()
                    .and_then(|cd| cd.get_filename())
                    .map(str::to_string);
                let mut bytes = Vec::new();
                while let Some(chunk) = field.next().await {
                    let chunk = chunk.map_err(|_| AppError::BadRequest("error.bad_form"))?;
                    total += chunk.len();
                    if total > MULTIPART_LIMIT {
                        return Err(AppError::PayloadTooLarge);
                    }
                    bytes.extend_from_slice(&chunk);
                }
                match filename {
                    Some(filename) => out.files.push(Upload {
                        field: name,
                        filename,
                        bytes,
                    }),
                    None => {
                        let text = String::from_utf8(bytes)
                            .map_err(|_| AppError::BadRequest("error.bad_form"))?;
                        if out.fields.insert(name, text).is_some() {
                            return Err(AppError::BadRequest("error.bad_form"));
                        }
                    }
                }
            }
            check(&req, out.field("csrf_token"))?;
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_depends_on_secret_and_binding() {
        let a = token_for(b"secret-one", "session-a");
        assert_eq!(a, token_for(b"secret-one", "session-a"));
        assert_ne!(a, token_for(b"secret-two", "session-a"));
        assert_ne!(a, token_for(b"secret-one", "session-b"));
        assert_eq!(a.len(), 64);
        assert!(ct_eq(&a, &a.clone()));
        assert!(!ct_eq(&a, &a[..63]));
    }
}
