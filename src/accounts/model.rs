//! Account types: rows, roles and the parsing newtypes.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::users;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub handle: String,
    pub display_name: String,
    pub password_hash: String,
    pub bio: String,
    pub avatar_media_id: Option<i64>,
    pub locale: Option<String>,
    pub email_verified_at: Option<NaiveDateTime>,
    pub password_changed_at: NaiveDateTime,
    /// Kept by triggers on `follows`.
    pub followers_count: i64,
    pub following_count: i64,
}

/// Roles beyond "buyer", which every account is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Buyer,
    Creator,
    Merchant,
    Moderator,
    Admin,
}

impl Role {
    pub const GRANTABLE: [Role; 4] = [Role::Creator, Role::Merchant, Role::Moderator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Buyer => "buyer",
            Role::Creator => "creator",
            Role::Merchant => "merchant",
            Role::Moderator => "moderator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s.trim().to_ascii_lowercase().as_str() {
            "buyer" => Some(Role::Buyer),
            "creator" => Some(Role::Creator),
            "merchant" => Some(Role::Merchant),
            "moderator" => Some(Role::Moderator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A syntactically valid, lower-cased email address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Option<Email> {
        let s = s.trim().to_lowercase();
        if s.len() > 254 || !validator::ValidateEmail::validate_email(&s) {
            return None;
        }
        Some(Email(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A handle: 3–24 characters, lower-case letters, digits and `_`, starting with a letter, not a
/// reserved word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handle(String);

const RESERVED_HANDLES: &[&str] = &[
    "admin",
    "administrator",
    "root",
    "system",
    "support",
    "help",
    "haodian",
    "merchant",
    "creator",
    "moderator",
    "shop",
    "shops",
    "static",
    "api",
    "login",
    "logout",
    "signup",
    "settings",
    "orders",
    "cart",
    "checkout",
    "products",
    "metrics",
    "healthz",
    "official",
    "security",
    "staff",
    "null",
    "undefined",
];

impl Handle {
    pub fn parse(s: &str) -> Result<Handle, &'static str> {
        let s = s.trim().trim_start_matches('@').to_ascii_lowercase();
        let n = s.chars().count();
        if !(3..=24).contains(&n) {
            return Err("handle_length");
        }
        let mut chars = s.chars();
        if !chars.next().is_some_and(|c| c.is_ascii_lowercase())
            || !s
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err("handle_chars");
        }
        if RESERVED_HANDLES.contains(&s.as_str()) {
            return Err("handle_reserved");
        }
        Ok(Handle(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A display name: 1–40 characters after trimming, no control characters.
pub fn check_display_name(s: &str) -> Result<String, &'static str> {
    let s = s.trim();
    let n = s.chars().count();
    if n == 0 {
        return Err("required");
    }
    if n > 40 {
        return Err("display_name_length");
    }
    if s.chars().any(char::is_control) {
        return Err("no_control_chars");
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles() {
        assert_eq!(Handle::parse("@Li_Na88").map(|h| h.0), Ok("li_na88".into()));
        assert_eq!(Handle::parse("ab"), Err("handle_length"));
        assert_eq!(Handle::parse("9lives"), Err("handle_chars"));
        assert_eq!(Handle::parse("li na"), Err("handle_chars"));
        assert_eq!(Handle::parse("李娜娜"), Err("handle_chars"));
        assert_eq!(Handle::parse("admin"), Err("handle_reserved"));
    }

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse(" A@Example.COM ").map(|e| e.0),
            Some("a@example.com".into())
        );
        assert!(Email::parse("not-an-email").is_none());
        assert!(Email::parse("a@").is_none());
    }

    #[test]
    fn display_names() {
        assert_eq!(check_display_name("  小店  "), Ok("小店".into()));
        assert_eq!(check_display_name(""), Err("required"));
        assert_eq!(
            check_display_name(&"长".repeat(41)),
            Err("display_name_length")
        );
        assert_eq!(check_display_name("a\u{0007}b"), Err("no_control_chars"));
    }
}
