//! Account use cases: sign-up, email verification, login, logout, password reset, password and
//! email change, profile, avatar, roles. Services own their transactions and authorization and
//! know nothing of HTTP.

use chrono::{Duration, Utc};
use diesel::prelude::*;
use serde::Deserialize;
use validator::{Validate, ValidationError};

use super::model::{check_display_name, Email, Handle, Role, User};
use super::password;
use super::session::{self, hash_token, random_token};
use super::throttle::{self, Limits};
use crate::db::schema::{audit_log, email_tokens, media, user_roles, users};
use crate::db::{is_unique_violation, write_tx, DbConn};
use crate::error::{AppError, FieldErrors};
use crate::i18n::{self, Locale};
use crate::mail::{self, Outgoing};

pub const RESET_TOKEN_MINUTES: i64 = 30;
pub const VERIFY_TOKEN_HOURS: i64 = 48;
pub const BIO_MAX: usize = 280;

fn now() -> chrono::NaiveDateTime {
    Utc::now().naive_utc()
}

fn v_email(s: &str) -> Result<(), ValidationError> {
    if s.trim().is_empty() {
        return Err(ValidationError::new("required"));
    }
    Email::parse(s)
        .map(|_| ())
        .ok_or_else(|| ValidationError::new("email_invalid"))
}

fn v_handle(s: &str) -> Result<(), ValidationError> {
    if s.trim().is_empty() {
        return Err(ValidationError::new("required"));
    }
    Handle::parse(s).map(|_| ()).map_err(ValidationError::new)
}

fn v_display_name(s: &str) -> Result<(), ValidationError> {
    check_display_name(s)
        .map(|_| ())
        .map_err(ValidationError::new)
}

fn v_required(s: &str) -> Result<(), ValidationError> {
    if s.is_empty() {
        Err(ValidationError::new("required"))
    } else {
        Ok(())
    }
}

/// The sign-up form (field names are part of the public contract).
#[derive(Debug, Default, Clone, Deserialize, Validate)]
#[serde(default)]
pub struct SignupForm {
    #[validate(custom(function = "v_email"))]
    pub email: String,
    #[validate(custom(function = "v_handle"))]
    pub handle: String,
    #[validate(custom(function = "v_display_name"))]
    pub display_name: String,
    #[validate(custom(function = "v_required"))]
    pub password: String,
    #[validate(must_match(other = "password", code = "password_mismatch"))]
    pub password_confirm: String,
}

#[derive(Debug, Default, Clone, Deserialize, Validate)]
#[serde(default)]
pub struct NewPasswordForm {
    pub token: String,
    pub current_password: String,
    #[validate(custom(function = "v_required"))]
    pub password: String,
    #[validate(must_match(other = "password", code = "password_mismatch"))]
    pub password_confirm: String,
}

#[derive(Debug, Default, Clone, Deserialize, Validate)]
#[serde(default)]
pub struct ProfileForm {
    #[validate(custom(function = "v_display_name"))]
    pub display_name: String,
    #[validate(length(max = 280, code = "bio_length"))]
    pub bio: String,
    pub locale: String,
}

/// Checks the password policy for an account and reports it on the `password` field.
fn check_password(pw: &str, handle: &str, email: &str) -> Result<(), AppError> {
    password::check_policy(pw, handle, email).map_err(|code| AppError::field("password", code))
}

fn user_locale(u: &User) -> Locale {
    u.locale
        .as_deref()
        .and_then(Locale::parse)
        .unwrap_or_default()
}

/// Creates an email token of `purpose` and returns the raw token for the link.
fn new_email_token(
    conn: &mut DbConn,
    user_id: i64,
    purpose: &str,
    new_email: Option<&str>,
    ttl: Duration,
) -> Result<String, AppError> {
    let token = random_token();
    let t = now();
    diesel::insert_into(email_tokens::table)
        .values((
            email_tokens::user_id.eq(user_id),
            email_tokens::purpose.eq(purpose),
            email_tokens::token_hash.eq(hash_token(&token)),
            email_tokens::new_email.eq(new_email),
            email_tokens::created_at.eq(t),
            email_tokens::expires_at.eq(t + ttl),
        ))
        .execute(conn)?;
    Ok(token)
}

/// Consumes a live token of `purpose` exactly once (compare-and-set on `used_at`).
fn consume_token(
    conn: &mut DbConn,
    token: &str,
    purpose: &str,
) -> Result<(i64, Option<String>), AppError> {
    let t = now();
    let row: Option<(i64, i64, Option<String>)> = email_tokens::table
        .filter(email_tokens::token_hash.eq(hash_token(token)))
        .filter(email_tokens::purpose.eq(purpose))
        .filter(email_tokens::used_at.is_null())
        .filter(email_tokens::expires_at.gt(t))
        .select((
            email_tokens::id,
            email_tokens::user_id,
            email_tokens::new_email,
        ))
        .first(conn)
        .optional()?;
    let Some((id, user_id, new_email)) = row else {
        return Err(AppError::BadRequest("token.invalid"));
    };
    let n = diesel::update(
        email_tokens::table
            .find(id)
            .filter(email_tokens::used_at.is_null()),
    )
    .set(email_tokens::used_at.eq(Some(t)))
    .execute(conn)?;
    if n != 1 {
        return Err(AppError::BadRequest("token.invalid"));
    }
    Ok((user_id, new_email))
}

fn send_verification(conn: &mut DbConn, user: &User, base_url: &str) -> Result<(), AppError> {
    let token = new_email_token(
        conn,
        user.id,
        "verify",
        None,
        Duration::hours(VERIFY_TOKEN_HOURS),
    )?;
    let l = user_locale(user);
    let link = format!("{base_url}/verify?token={token}");
    mail::enqueue(
        conn,
        &Outgoing {
            to: &user.email,
            kind: "verify_email",
            subject: i18n::t(l, "mail.verify.subject").into_owned(),
            body: i18n::tf(
                l,
                "mail.verify.body",
                &[("name", &user.display_name), ("link", &link)],
            ),
        },
    )
}

pub fn find_user(conn: &mut DbConn, id: i64) -> Result<User, AppError> {
    users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .optional()?
        .ok_or(AppError::NotFound)
}

pub fn find_by_handle(conn: &mut DbConn, handle: &str) -> Result<User, AppError> {
    users::table
        .filter(users::handle.eq(handle.to_ascii_lowercase()))
        .select(User::as_select())
        .first(conn)
        .optional()?
        .ok_or(AppError::NotFound)
}

pub fn roles_of(conn: &mut DbConn, user_id: i64) -> Result<Vec<Role>, AppError> {
    Ok(user_roles::table
        .filter(user_roles::user_id.eq(user_id))
        .select(user_roles::role)
        .load::<String>(conn)?
        .iter()
        .filter_map(|r| Role::parse(r))
        .collect())
}

/// Signs a new account up (role buyer), queues the verification email, returns the user.
pub fn signup(
    conn: &mut DbConn,
    form: &SignupForm,
    locale: Locale,
    base_url: &str,
) -> Result<User, AppError> {
    let mut errors: FieldErrors = form.validate().err().map(Into::into).unwrap_or_default();
    let email = Email::parse(&form.email);
    let handle = Handle::parse(&form.handle).ok();
    if errors.first("password").is_none() {
        let h = handle.as_ref().map(Handle::as_str).unwrap_or("");
        let e = email.as_ref().map(Email::as_str).unwrap_or("");
        if let Err(code) = password::check_policy(&form.password, h, e) {
            errors.add("password", code);
        }
    }
    let (Some(email), Some(handle), Ok(display_name)) =
        (email, handle, check_display_name(&form.display_name))
    else {
        return Err(AppError::Invalid(errors));
    };
    if !errors.is_empty() {
        return Err(AppError::Invalid(errors));
    }
    // Hash outside the transaction: it takes tens of milliseconds.
    let hash = password::hash(&form.password)?;
    write_tx(conn, |c| {
        let mut taken = FieldErrors::new();
        let email_used: i64 = users::table
            .filter(users::email.eq(email.as_str()))
            .count()
            .get_result(c)?;
        if email_used > 0 {
            taken.add("email", "email_taken");
        }
        let handle_used: i64 = users::table
            .filter(users::handle.eq(handle.as_str()))
            .count()
            .get_result(c)?;
        if handle_used > 0 {
            taken.add("handle", "handle_taken");
        }
        taken.into_result()?;
        let user = insert_user(
            c,
            email.as_str(),
            handle.as_str(),
            &display_name,
            &hash,
            Some(locale),
            false,
        )?;
        send_verification(c, &user, base_url)?;
        Ok(user)
    })
}

fn insert_user(
    c: &mut DbConn,
    email: &str,
    handle: &str,
    display_name: &str,
    hash: &str,
    locale: Option<Locale>,
    verified: bool,
) -> Result<User, AppError> {
    let t = now();
    let id: i64 = diesel::insert_into(users::table)
        .values((
            users::email.eq(email),
            users::handle.eq(handle),
            users::display_name.eq(display_name),
            users::password_hash.eq(hash),
            users::bio.eq(""),
            users::locale.eq(locale.map(|l| l.code())),
            users::email_verified_at.eq(verified.then_some(t)),
            users::password_changed_at.eq(t),
            users::created_at.eq(t),
            users::updated_at.eq(t),
        ))
        .returning(users::id)
        .get_result(c)
        .map_err(|e| {
            if is_unique_violation(&e) {
                AppError::field("email", "email_taken")
            } else {
                e.into()
            }
        })?;
    find_user(c, id)
}

/// Creates an account from the CLI (or by an admin): verified, with the given role.
pub fn create_user(
    conn: &mut DbConn,
    email: &str,
    handle: &str,
    display_name: &str,
    pw: &str,
    role: Role,
    actor: Option<i64>,
) -> Result<User, AppError> {
    let mut errors = FieldErrors::new();
    let e = Email::parse(email);
    if e.is_none() {
        errors.add("email", "email_invalid");
    }
    let h = Handle::parse(handle);
    if let Err(code) = &h {
        errors.add("handle", code);
    }
    let name = check_display_name(display_name);
    if let Err(code) = &name {
        errors.add("display_name", code);
    }
    let (Some(e), Ok(h), Ok(name)) = (e, h, name) else {
        return Err(AppError::Invalid(errors));
    };
    check_password(pw, h.as_str(), e.as_str())?;
    let hash = password::hash(pw)?;
    write_tx(conn, |c| {
        let user = insert_user(c, e.as_str(), h.as_str(), &name, &hash, None, true)?;
        if role != Role::Buyer {
            grant_role_tx(c, user.id, role, actor)?;
        }
        audit(
            c,
            actor,
            "user.create",
            "user",
            Some(user.id),
            &format!("role={}", role.as_str()),
        )?;
        Ok(user)
    })
}

/// Grants a role; returns whether it was new.
fn grant_role_tx(
    c: &mut DbConn,
    user_id: i64,
    role: Role,
    actor: Option<i64>,
) -> Result<bool, AppError> {
    let n = crate::per_backend!(c, |c| diesel::insert_into(user_roles::table)
        .values((
            user_roles::user_id.eq(user_id),
            user_roles::role.eq(role.as_str()),
            user_roles::granted_at.eq(now()),
            user_roles::granted_by.eq(actor),
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(n == 1)
}

/// Grants a role; only admins may grant moderator or admin, and the grant is audit-logged.
pub fn grant_role(
    conn: &mut DbConn,
    actor: &session::SessionUser,
    user_id: i64,
    role: Role,
) -> Result<(), AppError> {
    if !actor.has_role(Role::Admin) {
        return Err(AppError::Forbidden("error.403.body"));
    }
    if role == Role::Buyer {
        return Ok(());
    }
    write_tx(conn, |c| {
        find_user(c, user_id)?;
        if !grant_role_tx(c, user_id, role, Some(actor.id))? {
            return Err(AppError::Conflict("admin.role_held"));
        }
        audit(
            c,
            Some(actor.id),
            "role.grant",
            "user",
            Some(user_id),
            role.as_str(),
        )
    })
}

/// Appends an audit row (append-only; the database refuses updates and deletes).
pub fn audit(
    c: &mut DbConn,
    actor: Option<i64>,
    action: &str,
    subject_type: &str,
    subject_id: Option<i64>,
    detail: &str,
) -> Result<(), AppError> {
    audit_shop(c, actor, action, subject_type, subject_id, None, detail)
}

pub fn verify_email(conn: &mut DbConn, token: &str) -> Result<(), AppError> {
    write_tx(conn, |c| {
        let (user_id, _) = consume_token(c, token, "verify")?;
        diesel::update(
            users::table
                .find(user_id)
                .filter(users::email_verified_at.is_null()),
        )
        .set((
            users::email_verified_at.eq(Some(now())),
            users::updated_at.eq(now()),
        ))
        .execute(c)?;
        Ok(())
    })
}

pub fn resend_verification(
    conn: &mut DbConn,
    user_id: i64,
    base_url: &str,
) -> Result<(), AppError> {
    write_tx(conn, |c| {
        let user = find_user(c, user_id)?;
        if user.email_verified_at.is_some() {
            return Err(AppError::Conflict("verify.already"));
        }
        send_verification(c, &user, base_url)
    })
}

/// Login throttling settings for accounts and client addresses.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    pub account: Limits,
    pub ip: Limits,
}

/// Logs in; returns the user and the new session's cookie token. Unknown email and wrong
/// password get the same answer, and take the same time.
pub fn login(
    conn: &mut DbConn,
    email: &str,
    pw: &str,
    ip: &str,
    user_agent: &str,
    limits: LoginLimits,
    absolute: std::time::Duration,
) -> Result<(User, String, session::Mfa), AppError> {
    let acct_key = format!("acct:{}", email.trim().to_lowercase());
    let ip_key = format!("ip:{ip}");
    let wait = [
        throttle::blocked_for(conn, &acct_key)?,
        throttle::blocked_for(conn, &ip_key)?,
    ]
    .into_iter()
    .flatten()
    .max();
    if let Some(secs) = wait {
        return Err(AppError::TooManyRequests(secs));
    }
    let user: Option<User> = match Email::parse(email) {
        Some(e) => users::table
            .filter(users::email.eq(e.as_str()))
            .select(User::as_select())
            .first(conn)
            .optional()?,
        None => None,
    };
    let ok = match &user {
        Some(u) => password::verify(pw, &u.password_hash),
        None => {
            password::dummy_verify(pw);
            false
        }
    };
    let Some(user) = user.filter(|_| ok) else {
        throttle::record_failure(conn, &acct_key, limits.account)?;
        throttle::record_failure(conn, &ip_key, limits.ip)?;
        return Err(AppError::field("email", "login_failed"));
    };
    let rehash = if password::needs_rehash(&user.password_hash) {
        Some(password::hash(pw)?)
    } else {
        None
    };
    let (token, mfa) = write_tx(conn, |c| {
        throttle::clear(c, &acct_key)?;
        if let Some(h) = &rehash {
            diesel::update(users::table.find(user.id))
                .set(users::password_hash.eq(h))
                .execute(c)?;
        }
        let totp: Option<String> = users::table
            .find(user.id)
            .select(users::totp_secret)
            .first(c)?;
        let mfa = if totp.is_some() {
            session::Mfa::Pending
        } else {
            session::Mfa::Off
        };
        session::create(c, user.id, absolute, ip, user_agent, mfa).map(|t| (t, mfa))
    })?;
    Ok((user, token, mfa))
}

pub fn logout(conn: &mut DbConn, token: &str) -> Result<(), AppError> {
    write_tx(conn, |c| session::revoke_token(c, token))
}

/// Sends a reset link when the email belongs to an account; answers the same either way.
/// Requests per address are throttled like logins, so the form can not be used to flood a mailbox.
pub fn request_reset(
    conn: &mut DbConn,
    email: &str,
    base_url: &str,
    limits: Limits,
) -> Result<(), AppError> {
    let Some(e) = Email::parse(email) else {
        return Err(AppError::field("email", "email_invalid"));
    };
    let key = format!("reset:{}", e.as_str());
    if throttle::blocked_for(conn, &key)?.is_some() {
        return Ok(());
    }
    throttle::record_failure(conn, &key, limits)?;
    write_tx(conn, |c| {
        let user: Option<User> = users::table
            .filter(users::email.eq(e.as_str()))
            .select(User::as_select())
            .first(c)
            .optional()?;
        let Some(user) = user else { return Ok(()) };
        let token = new_email_token(
            c,
            user.id,
            "reset",
            None,
            Duration::minutes(RESET_TOKEN_MINUTES),
        )?;
        let l = user_locale(&user);
        let link = format!("{base_url}/password/reset?token={token}");
        mail::enqueue(
            c,
            &Outgoing {
                to: &user.email,
                kind: "password_reset",
                subject: i18n::t(l, "mail.reset.subject").into_owned(),
                body: i18n::tf(
                    l,
                    "mail.reset.body",
                    &[
                        ("name", &user.display_name),
                        ("link", &link),
                        ("minutes", &RESET_TOKEN_MINUTES.to_string()),
                    ],
                ),
            },
        )
    })
}

/// Whether a reset token is live (to show the form or an "expired" page).
pub fn reset_token_valid(conn: &mut DbConn, token: &str) -> Result<bool, AppError> {
    let n: i64 = email_tokens::table
        .filter(email_tokens::token_hash.eq(hash_token(token)))
        .filter(email_tokens::purpose.eq("reset"))
        .filter(email_tokens::used_at.is_null())
        .filter(email_tokens::expires_at.gt(now()))
        .count()
        .get_result(conn)?;
    Ok(n == 1)
}

fn notify_password_changed(c: &mut DbConn, user: &User) -> Result<(), AppError> {
    let l = user_locale(user);
    mail::enqueue(
        c,
        &Outgoing {
            to: &user.email,
            kind: "password_changed",
            subject: i18n::t(l, "mail.password_changed.subject").into_owned(),
            body: i18n::tf(
                l,
                "mail.password_changed.body",
                &[("name", &user.display_name)],
            ),
        },
    )
}

/// Sets a new password from a reset link (single use) and ends every session of the account.
pub fn reset_password(conn: &mut DbConn, form: &NewPasswordForm) -> Result<(), AppError> {
    form.validate()?;
    let user_id: Option<i64> = email_tokens::table
        .filter(email_tokens::token_hash.eq(hash_token(&form.token)))
        .select(email_tokens::user_id)
        .first(conn)
        .optional()?;
    let user = find_user(conn, user_id.ok_or(AppError::BadRequest("token.invalid"))?)?;
    check_password(&form.password, &user.handle, &user.email)?;
    let hash = password::hash(&form.password)?;
    write_tx(conn, |c| {
        let (uid, _) = consume_token(c, &form.token, "reset")?;
        let t = now();
        diesel::update(users::table.find(uid))
            .set((
                users::password_hash.eq(&hash),
                users::password_changed_at.eq(t),
                users::updated_at.eq(t),
            ))
            .execute(c)?;
        session::revoke_all(c, uid, None)?;
        throttle::clear(c, &format!("acct:{}", user.email))?;
        notify_password_changed(c, &user)
    })
}

/// Changes the password given the current one; other sessions end, this one stays.
pub fn change_password(
    conn: &mut DbConn,
    me: &session::SessionUser,
    form: &NewPasswordForm,
) -> Result<(), AppError> {
    let user = find_user(conn, me.id)?;
    if !password::verify(&form.current_password, &user.password_hash) {
        return Err(AppError::field("current_password", "password_wrong"));
    }
    form.validate()?;
    check_password(&form.password, &user.handle, &user.email)?;
    let hash = password::hash(&form.password)?;
    write_tx(conn, |c| {
        let t = now();
        diesel::update(users::table.find(user.id))
            .set((
                users::password_hash.eq(&hash),
                users::password_changed_at.eq(t),
                users::updated_at.eq(t),
            ))
            .execute(c)?;
        session::revoke_all(c, user.id, Some(me.session_id))?;
        notify_password_changed(c, &user)
    })
}

/// Starts an email change: checks the current password, sends a confirmation link to the new
/// address. The address changes only when that link is opened.
pub fn request_email_change(
    conn: &mut DbConn,
    me: &session::SessionUser,
    current_password: &str,
    new_email: &str,
    base_url: &str,
) -> Result<(), AppError> {
    let user = find_user(conn, me.id)?;
    if !password::verify(current_password, &user.password_hash) {
        return Err(AppError::field("current_password", "password_wrong"));
    }
    let Some(e) = Email::parse(new_email) else {
        return Err(AppError::field("new_email", "email_invalid"));
    };
    if e.as_str() == user.email {
        return Err(AppError::field("new_email", "email_same"));
    }
    write_tx(conn, |c| {
        let used: i64 = users::table
            .filter(users::email.eq(e.as_str()))
            .count()
            .get_result(c)?;
        if used > 0 {
            return Err(AppError::field("new_email", "email_taken"));
        }
        let token = new_email_token(
            c,
            user.id,
            "change_email",
            Some(e.as_str()),
            Duration::hours(VERIFY_TOKEN_HOURS),
        )?;
        let l = user_locale(&user);
        let link = format!("{base_url}/settings/email/confirm?token={token}");
        mail::enqueue(
            c,
            &Outgoing {
                to: e.as_str(),
                kind: "email_change",
                subject: i18n::t(l, "mail.email_change.subject").into_owned(),
                body: i18n::tf(
                    l,
                    "mail.email_change.body",
                    &[("name", &user.display_name), ("link", &link)],
                ),
            },
        )
    })
}

/// Completes an email change from its link; the old address is told.
pub fn confirm_email_change(conn: &mut DbConn, token: &str) -> Result<(), AppError> {
    write_tx(conn, |c| {
        let (user_id, new_email) = consume_token(c, token, "change_email")?;
        let new_email = new_email.ok_or(AppError::BadRequest("token.invalid"))?;
        let user = find_user(c, user_id)?;
        let t = now();
        diesel::update(users::table.find(user_id))
            .set((
                users::email.eq(&new_email),
                users::email_verified_at.eq(Some(t)),
                users::updated_at.eq(t),
            ))
            .execute(c)
            .map_err(|e| {
                if is_unique_violation(&e) {
                    AppError::Conflict("email.taken_now")
                } else {
                    e.into()
                }
            })?;
        let l = user_locale(&user);
        mail::enqueue(
            c,
            &Outgoing {
                to: &user.email,
                kind: "email_changed",
                subject: i18n::t(l, "mail.email_changed.subject").into_owned(),
                body: i18n::tf(
                    l,
                    "mail.email_changed.body",
                    &[("name", &user.display_name), ("email", &new_email)],
                ),
            },
        )
    })
}

pub fn update_profile(
    conn: &mut DbConn,
    me: &session::SessionUser,
    form: &ProfileForm,
) -> Result<(), AppError> {
    form.validate()?;
    let name =
        check_display_name(&form.display_name).map_err(|c| AppError::field("display_name", c))?;
    let bio = form.bio.trim().to_string();
    if bio
        .chars()
        .any(|ch| ch.is_control() && ch != '\n' && ch != '\r')
    {
        return Err(AppError::field("bio", "no_control_chars"));
    }
    let locale = match form.locale.as_str() {
        "" => None,
        code => Some(Locale::parse(code).ok_or(AppError::field("locale", "locale_invalid"))?),
    };
    write_tx(conn, |c| {
        diesel::update(users::table.find(me.id))
            .set((
                users::display_name.eq(&name),
                users::bio.eq(&bio),
                users::locale.eq(locale.map(|l| l.code())),
                users::updated_at.eq(now()),
            ))
            .execute(c)?;
        Ok(())
    })
}

pub fn set_locale(conn: &mut DbConn, user_id: i64, locale: Locale) -> Result<(), AppError> {
    write_tx(conn, |c| {
        diesel::update(users::table.find(user_id))
            .set(users::locale.eq(Some(locale.code())))
            .execute(c)?;
        Ok(())
    })
}

/// The image type of some bytes, judged by their content (never by the client's word).
pub fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// Stores an avatar (PNG, JPEG, GIF or WebP by content, at most `max_bytes`).
pub fn set_avatar(
    conn: &mut DbConn,
    me: &session::SessionUser,
    bytes: &[u8],
    max_bytes: usize,
) -> Result<i64, AppError> {
    if bytes.len() > max_bytes {
        return Err(AppError::field("avatar", "avatar_too_large"));
    }
    let Some(content_type) = sniff_image(bytes) else {
        return Err(AppError::field("avatar", "avatar_type"));
    };
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes));
    write_tx(conn, |c| {
        let id: i64 = diesel::insert_into(media::table)
            .values((
                media::owner_user_id.eq(Some(me.id)),
                media::content_type.eq(content_type),
                media::bytes.eq(bytes),
                media::byte_size.eq(bytes.len() as i64),
                media::sha256.eq(&digest),
                media::created_at.eq(now()),
            ))
            .returning(media::id)
            .get_result(c)?;
        let old: Option<i64> = users::table
            .find(me.id)
            .select(users::avatar_media_id)
            .first(c)?;
        diesel::update(users::table.find(me.id))
            .set((
                users::avatar_media_id.eq(Some(id)),
                users::updated_at.eq(now()),
            ))
            .execute(c)?;
        if let Some(old) = old {
            diesel::delete(
                media::table
                    .find(old)
                    .filter(media::owner_user_id.eq(me.id)),
            )
            .execute(c)?;
        }
        Ok(id)
    })
}

/// A stored file: (content type, bytes, sha256).
/// A stored file: (content type, bytes, sha256, private). A private one is served by
/// `/media/{id}` only to its uploader and moderators (see [`media_visible`]).
pub type MediaFile = (String, Vec<u8>, String, bool);

pub fn get_media(conn: &mut DbConn, id: i64) -> Result<MediaFile, AppError> {
    media::table
        .find(id)
        .select((
            media::content_type,
            media::bytes,
            media::sha256,
            media::private,
        ))
        .first(conn)
        .optional()?
        .ok_or(AppError::NotFound)
}

/// Whether `/media/{id}` may show this file to `viewer`: public files to anyone, private ones
/// to their uploader and moderators. Anyone else gets "not found" (the id tells nothing).
pub fn media_visible(
    conn: &mut DbConn,
    id: i64,
    viewer: Option<&session::SessionUser>,
) -> Result<bool, AppError> {
    let (private, owner): (bool, Option<i64>) = media::table
        .find(id)
        .select((media::private, media::owner_user_id))
        .first(conn)
        .optional()?
        .ok_or(AppError::NotFound)?;
    Ok(!private || viewer.is_some_and(|v| Some(v.id) == owner || v.has_role(Role::Moderator)))
}

/// Ends every session of the account but this one.
pub fn logout_others(conn: &mut DbConn, me: &session::SessionUser) -> Result<usize, AppError> {
    write_tx(conn, |c| session::revoke_all(c, me.id, Some(me.session_id)))
}

/// Housekeeping: expired sessions, old tokens, stale throttle counters.
pub fn housekeeping(conn: &mut DbConn, idle: std::time::Duration) -> Result<String, AppError> {
    use crate::db::schema::sessions;
    let t = now();
    let idle_cutoff = t - Duration::from_std(idle).map_err(AppError::internal)?;
    let s = write_tx(conn, |c| {
        diesel::delete(
            sessions::table.filter(
                sessions::expires_at
                    .lt(t)
                    .or(sessions::last_seen_at.lt(idle_cutoff)),
            ),
        )
        .execute(c)
    })?;
    let tk = write_tx(conn, |c| {
        diesel::delete(
            email_tokens::table.filter(email_tokens::expires_at.lt(t - Duration::days(1))),
        )
        .execute(c)
    })?;
    let th = write_tx(conn, throttle::prune)?;
    Ok(format!("sessions={s} tokens={tk} throttle={th}"))
}

/// Number of accounts (for seeding an empty database only).
pub fn count_users(conn: &mut DbConn) -> Result<i64, AppError> {
    Ok(users::table.count().get_result(conn)?)
}

/// One row of the admin's account list.
#[derive(Debug, Clone)]
pub struct UserSummary {
    pub user: User,
    pub roles: Vec<Role>,
}

impl UserSummary {
    pub fn has(&self, role: &Role) -> bool {
        self.roles.contains(role)
    }
}

pub const USERS_PER_PAGE: i64 = 20;

/// Accounts matching `query` (email or handle, case-insensitive), newest first; admins only.
pub fn list_users(
    conn: &mut DbConn,
    actor: &session::SessionUser,
    query: &str,
    page: crate::pagination::PageQuery,
) -> Result<crate::pagination::Paginated<UserSummary>, AppError> {
    if !actor.has_role(Role::Admin) {
        return Err(AppError::Forbidden("error.403.body"));
    }
    let q = query.trim().to_lowercase();
    let pattern = crate::db::like_pattern(&q);
    let filtered = || {
        let mut b = users::table.into_boxed();
        if !q.is_empty() {
            b = b.filter(
                users::email
                    .like(pattern.clone())
                    .escape('\\')
                    .or(users::handle.like(pattern.clone()).escape('\\')),
            );
        }
        b
    };
    let total: i64 = filtered().count().get_result(conn)?;
    let rows: Vec<User> = filtered()
        .order(users::id.desc())
        .limit(USERS_PER_PAGE)
        .offset(page.offset(USERS_PER_PAGE))
        .select(User::as_select())
        .load(conn)?;
    let ids: Vec<i64> = rows.iter().map(|u| u.id).collect();
    let grants: Vec<(i64, String)> = user_roles::table
        .filter(user_roles::user_id.eq_any(&ids))
        .select((user_roles::user_id, user_roles::role))
        .load(conn)?;
    let items = rows
        .into_iter()
        .map(|user| {
            let mut roles: Vec<Role> = grants
                .iter()
                .filter(|(id, _)| *id == user.id)
                .filter_map(|(_, r)| Role::parse(r))
                .collect();
            roles.sort();
            UserSummary { user, roles }
        })
        .collect();
    Ok(crate::pagination::Paginated {
        items,
        page: page.number(),
        per_page: USERS_PER_PAGE,
        total,
    })
}

/// Takes a role away; admins only, audit-logged. An admin can not drop their own admin role
/// (so the platform never loses its last admin by accident).
pub fn revoke_role(
    conn: &mut DbConn,
    actor: &session::SessionUser,
    user_id: i64,
    role: Role,
) -> Result<(), AppError> {
    if !actor.has_role(Role::Admin) {
        return Err(AppError::Forbidden("error.403.body"));
    }
    if role == Role::Admin && user_id == actor.id {
        return Err(AppError::Conflict("admin.cannot_revoke_self"));
    }
    write_tx(conn, |c| {
        let n = diesel::delete(
            user_roles::table
                .filter(user_roles::user_id.eq(user_id))
                .filter(user_roles::role.eq(role.as_str())),
        )
        .execute(c)?;
        if n == 0 {
            return Err(AppError::Conflict("admin.role_not_held"));
        }
        // Losing a staff role ends the account's sessions, so the change takes effect at once.
        if matches!(role, Role::Admin | Role::Moderator) {
            session::revoke_all(c, user_id, None)?;
        }
        audit(
            c,
            Some(actor.id),
            "role.revoke",
            "user",
            Some(user_id),
            role.as_str(),
        )
    })
}

/// Gives an account a role as a consequence of its own action (opening a shop makes a
/// merchant); audit-logged when new.
pub fn ensure_role(
    c: &mut DbConn,
    user_id: i64,
    role: Role,
    _now: chrono::NaiveDateTime,
) -> Result<(), AppError> {
    if role != Role::Buyer && grant_role_tx(c, user_id, role, None)? {
        audit(
            c,
            Some(user_id),
            "role.grant",
            "user",
            Some(user_id),
            role.as_str(),
        )?;
    }
    Ok(())
}

/// Appends an audit row about something in a shop (append-only).
pub fn audit_shop(
    c: &mut DbConn,
    actor: Option<i64>,
    action: &str,
    subject_type: &str,
    subject_id: Option<i64>,
    shop_id: Option<i64>,
    detail: &str,
) -> Result<(), AppError> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::actor_user_id.eq(actor),
            audit_log::action.eq(action),
            audit_log::subject_type.eq(subject_type),
            audit_log::subject_id.eq(subject_id),
            audit_log::shop_id.eq(shop_id),
            audit_log::detail.eq(detail),
            audit_log::created_at.eq(now()),
        ))
        .execute(c)?;
    Ok(())
}

/// Stores an uploaded file (already checked by the caller) and returns its id.
pub fn store_media(
    c: &mut DbConn,
    owner: i64,
    content_type: &str,
    bytes: &[u8],
    now: chrono::NaiveDateTime,
) -> Result<i64, AppError> {
    insert_media(c, owner, content_type, bytes, false, now)
}

/// Stores a file that only its uploader, moderators and the routes that check access may serve
/// (documents, evidence).
pub fn store_private_media(
    c: &mut DbConn,
    owner: i64,
    content_type: &str,
    bytes: &[u8],
    now: chrono::NaiveDateTime,
) -> Result<i64, AppError> {
    insert_media(c, owner, content_type, bytes, true, now)
}

fn insert_media(
    c: &mut DbConn,
    owner: i64,
    content_type: &str,
    bytes: &[u8],
    private: bool,
    now: chrono::NaiveDateTime,
) -> Result<i64, AppError> {
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes));
    Ok(diesel::insert_into(media::table)
        .values((
            media::owner_user_id.eq(Some(owner)),
            media::content_type.eq(content_type),
            media::bytes.eq(bytes),
            media::byte_size.eq(bytes.len() as i64),
            media::sha256.eq(&digest),
            media::created_at.eq(now),
            media::private.eq(private),
        ))
        .returning(media::id)
        .get_result(c)?)
}

// ---------- second factor (TOTP) ----------

/// Whether the user has a second factor.
pub fn mfa_enabled(conn: &mut DbConn, user_id: i64) -> Result<bool, AppError> {
    let secret: Option<String> = users::table
        .find(user_id)
        .select(users::totp_secret)
        .first(conn)?;
    Ok(secret.is_some())
}

/// Checks a code against the user's secret (once per code) and records its step.
fn check_code(
    c: &mut DbConn,
    user_id: i64,
    code: &str,
    now: chrono::NaiveDateTime,
) -> Result<bool, AppError> {
    let (secret, last): (Option<String>, Option<i64>) = users::table
        .find(user_id)
        .select((users::totp_secret, users::totp_last_step))
        .first(c)?;
    let Some(secret) = secret else {
        return Ok(false);
    };
    match super::totp::verify(&secret, code, now.and_utc().timestamp(), last) {
        Some(step) => {
            // Compare-and-set on the last step: the same code raced twice passes once.
            let n = diesel::update(
                users::table.find(user_id).filter(
                    users::totp_last_step
                        .is_null()
                        .or(users::totp_last_step.lt(step)),
                ),
            )
            .set(users::totp_last_step.eq(Some(step)))
            .execute(c)?;
            Ok(n == 1)
        }
        None => Ok(false),
    }
}

/// The second login step: a right code verifies the waiting session. Wrong codes count toward
/// the account's login throttle.
pub fn verify_login_code(
    conn: &mut DbConn,
    pending: &session::SessionUser,
    code: &str,
    limits: LoginLimits,
    now: chrono::NaiveDateTime,
) -> Result<(), AppError> {
    let key = format!("acct:{}", pending.email);
    if let Some(secs) = throttle::blocked_for(conn, &key)? {
        return Err(AppError::TooManyRequests(secs));
    }
    let ok = write_tx(conn, |c| {
        if !check_code(c, pending.id, code, now)? {
            return Ok(false);
        }
        diesel::update(crate::db::schema::sessions::table.find(pending.session_id))
            .set(crate::db::schema::sessions::mfa.eq(session::Mfa::Verified.as_str()))
            .execute(c)?;
        throttle::clear(c, &key)?;
        Ok::<bool, AppError>(true)
    })?;
    if ok {
        Ok(())
    } else {
        throttle::record_failure(conn, &key, limits.account)?;
        Err(AppError::field("code", "mfa_code"))
    }
}

/// Turns the second factor on with a new secret, once the user proves their app has it; this
/// session counts as verified.
pub fn enable_mfa(
    conn: &mut DbConn,
    me: &session::SessionUser,
    secret: &str,
    code: &str,
    now: chrono::NaiveDateTime,
) -> Result<(), AppError> {
    let secret = secret.trim();
    if super::totp::base32_decode(secret).is_none_or(|b| b.len() < 16) {
        return Err(AppError::BadRequest("error.400.body"));
    }
    let Some(step) = super::totp::verify(secret, code, now.and_utc().timestamp(), None) else {
        return Err(AppError::field("code", "mfa_code"));
    };
    write_tx(conn, |c| {
        let n = diesel::update(
            users::table
                .find(me.id)
                .filter(users::totp_secret.is_null()),
        )
        .set((
            users::totp_secret.eq(Some(secret)),
            users::totp_last_step.eq(Some(step)),
        ))
        .execute(c)?;
        if n == 0 {
            return Err(AppError::Conflict("mfa.already_on"));
        }
        diesel::update(crate::db::schema::sessions::table.find(me.session_id))
            .set(crate::db::schema::sessions::mfa.eq(session::Mfa::Verified.as_str()))
            .execute(c)?;
        audit(c, Some(me.id), "mfa.enable", "user", Some(me.id), "")
    })
}

/// Turns the second factor off (a current code is needed); other sessions end.
pub fn disable_mfa(
    conn: &mut DbConn,
    me: &session::SessionUser,
    code: &str,
    now: chrono::NaiveDateTime,
) -> Result<(), AppError> {
    write_tx(conn, |c| {
        if !check_code(c, me.id, code, now)? {
            return Err(AppError::field("code", "mfa_code"));
        }
        diesel::update(users::table.find(me.id))
            .set((
                users::totp_secret.eq(None::<String>),
                users::totp_last_step.eq(None::<i64>),
            ))
            .execute(c)?;
        diesel::update(crate::db::schema::sessions::table.find(me.session_id))
            .set(crate::db::schema::sessions::mfa.eq(session::Mfa::Off.as_str()))
            .execute(c)?;
        session::revoke_all(c, me.id, Some(me.session_id))?;
        audit(c, Some(me.id), "mfa.disable", "user", Some(me.id), "")
    })
}
