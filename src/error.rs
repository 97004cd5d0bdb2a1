//! The one error type. It knows nothing of HTTP: `web::errors` gives it a status and a page.
//! User-facing text is an i18n key; log detail stays apart and is logged only for 5xx.

use std::collections::BTreeMap;

/// Field-level validation failures: field name → i18n keys (validator codes) of its problems.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldErrors(pub BTreeMap<String, Vec<String>>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn add(&mut self, field: &str, code: &str) {
        self.0
            .entry(field.to_string())
            .or_default()
            .push(code.to_string());
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn first(&self, field: &str) -> Option<&str> {
        self.0
            .get(field)
            .and_then(|v| v.first())
            .map(String::as_str)
    }
    /// Ok when empty, otherwise the errors as an `AppError::Invalid`.
    pub fn into_result(self) -> Result<(), AppError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(AppError::Invalid(self))
        }
    }
}

impl From<validator::ValidationErrors> for FieldErrors {
    fn from(errors: validator::ValidationErrors) -> Self {
        let mut out = FieldErrors::new();
        for (field, errs) in errors.field_errors() {
            for e in errs {
                out.add(&field, &e.code);
            }
        }
        out
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Form input failed validation; the handler re-renders the form with these (422).
    #[error("invalid input: {0:?}")]
    Invalid(FieldErrors),
    /// Malformed request (400). The string is an i18n key.
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// Not logged in where a login is needed.
    #[error("authentication required")]
    Unauthenticated,
    /// Logged in but not allowed (403). The string is an i18n key.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// The CSRF token was missing or did not match (403).
    #[error("CSRF token missing or invalid")]
    Csrf,
    #[error("not found")]
    NotFound,
    /// The action is not valid in the current state (409). The string is an i18n key.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The action is not possible for these records (409), e.g. the SKUs that ran out during a
    /// checkout: the handler marks them on its page.
    #[error("conflict on {1:?}: {0}")]
    ConflictOn(&'static str, Vec<i64>),
    #[error("payload too large")]
    PayloadTooLarge,
    /// Throttled; retry after this many seconds (429).
    #[error("too many requests, retry after {0}s")]
    TooManyRequests(u64),
    #[error("database error: {0}")]
    Db(#[from] diesel::result::Error),
    #[error("database pool error: {0}")]
    Pool(#[from] r2d2::Error),
    /// Anything else that is our fault (500); the string is log detail, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn internal(e: impl std::fmt::Display) -> AppError {
        AppError::Internal(e.to_string())
    }
    /// A single-field validation error.
    pub fn field(field: &str, code: &str) -> AppError {
        let mut f = FieldErrors::new();
        f.add(field, code);
        AppError::Invalid(f)
    }
}

impl From<validator::ValidationErrors> for AppError {
    fn from(e: validator::ValidationErrors) -> Self {
        AppError::Invalid(e.into())
    }
}

pub type AppResult<T> = Result<T, AppError>;
