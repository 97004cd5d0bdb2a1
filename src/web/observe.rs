//! Request ids, structured request logs and metrics: the outermost middleware.
//! Logs carry method, route pattern, status, latency and the request id — never bodies, query
//! strings (they may hold tokens) or cookies.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest};
use rand::Rng;

use super::metrics::Metrics;
use super::{Locale, PageCtx, RequestId};

pub fn new_request_id() -> String {
    let bytes: [u8; 8] = rand::thread_rng().gen();
    hex::encode(bytes)
}

pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let id = new_request_id();
    req.extensions_mut().insert(RequestId(id.clone()));
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let method = req.method().to_string();
    let mut res = next.call(req).await?;
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let status = res.status().as_u16();
    let elapsed = start.elapsed().as_secs_f64();
    if let Some(m) = metrics {
        m.observe(&method, &route, status, elapsed);
    }
    if let Ok(v) = header::HeaderValue::from_str(&id) {
        res.headers_mut()
            .insert(header::HeaderName::from_static("x-request-id"), v);
    }
    tracing::info!(
        request_id = %id,
        method = %method,
        route = %route,
        status,
        ms = (elapsed * 1000.0).round() as u64,
        "request"
    );
    Ok(res)
}

/// The language of a request before (or without) a session: cookie, then Accept-Language.
pub fn detect_locale(req: &HttpRequest) -> Locale {
    req.cookie(super::LANG_COOKIE)
        .and_then(|c| Locale::parse(c.value()))
        .or_else(|| {
            req.headers()
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(Locale::from_accept_language)
        })
        .unwrap_or_default()
}

/// A page context for requests the session middleware did not see.
pub fn fallback_ctx(req: &HttpRequest) -> PageCtx {
    PageCtx {
        locale: detect_locale(req),
        csrf: String::new(),
        user: None,
        flash: None,
        path: req.uri().path().to_string(),
        request_id: super::request_id(req),
        tz: req
            .app_data::<super::State>()
            .map(|s| s.settings.tz)
            .unwrap_or(chrono_tz::Asia::Shanghai),
    }
}

impl actix_web::FromRequest for PageCtx {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let found = req.extensions().get::<PageCtx>().cloned();
        let ctx = found.unwrap_or_else(|| fallback_ctx(req));
        std::future::ready(Ok(ctx))
    }
}
