//! The HTTP face of `AppError`: a status per variant, and localized error pages that show the
//! request id and never internals. The page is rendered by [`middleware`], which sees the
//! request (language, user) that `ResponseError` does not.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, ResponseError};
use askama::Template;

use super::PageCtx;
use crate::error::AppError;

/// What the error page should say; attached to error responses.
#[derive(Debug, Clone)]
pub struct ErrorInfo {
    pub message_key: Option<&'static str>,
    /// Log detail for 5xx (never shown).
    pub detail: Option<String>,
    /// The validation codes of a 422 that no form shows again (each is `validation.{code}`),
    /// so the page says what was wrong instead of only "check your input".
    pub problems: Vec<String>,
}

/// Marks a response that must become a redirect to the login page.
#[derive(Debug, Clone, Copy)]
struct LoginRedirect;

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthenticated => StatusCode::SEE_OTHER,
            AppError::Forbidden(_) | AppError::Csrf => StatusCode::FORBIDDEN,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Conflict(_) | AppError::ConflictOn(..) => StatusCode::CONFLICT,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::Db(_) | AppError::Pool(_) | AppError::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::new(self.status_code());
        let message_key = match self {
            AppError::BadRequest(k)
            | AppError::Forbidden(k)
            | AppError::Conflict(k)
            | AppError::ConflictOn(k, _) => Some(*k),
            AppError::Csrf => Some("error.csrf"),
            AppError::Invalid(_) => Some("error.invalid"),
            _ => None,
        };
        let detail = match self {
            AppError::Db(_) | AppError::Pool(_) | AppError::Internal(_) => Some(self.to_string()),
            _ => None,
        };
        if let AppError::TooManyRequests(secs) = self {
            if let Ok(v) = header::HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if let AppError::Unauthenticated = self {
            resp.extensions_mut().insert(LoginRedirect);
        }
        let problems = match self {
            AppError::Invalid(f) => {
                let mut codes: Vec<String> = f.0.values().flatten().cloned().collect();
                codes.dedup();
                codes
            }
            _ => Vec::new(),
        };
        resp.extensions_mut().insert(ErrorInfo {
            message_key,
            detail,
            problems,
        });
        resp
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    ctx: &'a PageCtx,
    status: u16,
    title: String,
    message: String,
    problems: Vec<String>,
    retry_after: Option<String>,
}

/// Turns every 4xx/5xx response that is not already an HTML page into the localized error page
/// (this covers actix's own errors too: unknown routes, oversized bodies), and sends anonymous
/// visitors of protected pages to the login page.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    // Inner middleware answer errors as responses; an Err here is passed on untouched.
    let res = next.call(req).await?.map_into_boxed_body();
    let http_req = res.request().clone();
    if res.response().extensions().get::<LoginRedirect>().is_some() {
        let next_path = if http_req.method() == actix_web::http::Method::GET {
            http_req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_else(|| "/".into())
        } else {
            "/".to_string()
        };
        let location = format!(
            "/login?next={}",
            url::form_urlencoded::byte_serialize(next_path.as_bytes()).collect::<String>()
        );
        return Ok(res.into_response(super::redirect(&location)));
    }
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return Ok(res);
    }
    let is_html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html") || v.starts_with("application/json"));
    if is_html {
        return Ok(res);
    }
    let info = res.response().extensions().get::<ErrorInfo>().cloned();
    // Two statements: the fallback parses cookies, which needs the extensions unborrowed.
    let found = http_req.extensions().get::<PageCtx>().cloned();
    let ctx = found.unwrap_or_else(|| super::observe::fallback_ctx(&http_req));
    if status.is_server_error() {
        let detail = info
            .as_ref()
            .and_then(|i| i.detail.clone())
            .or_else(|| res.response().error().map(|e| e.to_string()))
            .unwrap_or_default();
        tracing::error!(request_id = %ctx.request_id, status = status.as_u16(), error = %detail, "request failed");
    }
    let code = status.as_u16();
    let known = matches!(
        code,
        400 | 403 | 404 | 405 | 409 | 413 | 422 | 429 | 500 | 503
    );
    let generic = if known {
        code
    } else if status.is_server_error() {
        500
    } else {
        400
    };
    let retry_after = res
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let problems = info
        .as_ref()
        .map(|i| {
            i.problems
                .iter()
                .map(|code| ctx.t(&format!("validation.{code}")).into_owned())
                .collect()
        })
        .unwrap_or_default();
    let message_key = info
        .and_then(|i| i.message_key)
        .map(str::to_string)
        .unwrap_or_else(|| format!("error.{generic}.body"));
    let page = ErrorPage {
        title: ctx.t(&format!("error.{generic}.title")).into_owned(),
        message: ctx.t(&message_key).into_owned(),
        problems,
        retry_after: retry_after.map(|s| ctx.tf("error.retry_after", "seconds", &s)),
        status: code,
        ctx: &ctx,
    };
    let body = page.render().unwrap_or_else(|_| format!("{code}"));
    let mut new = HttpResponse::build(status);
    for (name, value) in res.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            new.append_header((name.clone(), value.clone()));
        }
    }
    new.content_type("text/html; charset=utf-8");
    Ok(res.into_response(new.body(body)))
}
