//! Account pages: thin handlers that parse, call one service function and render or redirect.

use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::http::StatusCode;
use actix_web::{get, post, web as aw, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::model::{Role, User};
use super::service::{self, LoginLimits, NewPasswordForm, ProfileForm, SignupForm};
use super::session::Viewer;
use super::throttle::Limits;
use crate::error::{AppError, FieldErrors};
use crate::i18n::Locale;
use crate::web::{self, CsrfForm, CsrfMultipart, FlashLevel, PageCtx, PageQuery, Paginated, State};

pub fn routes(cfg: &mut aw::ServiceConfig) {
    cfg.service(media)
        .service(signup_page)
        .service(signup_submit)
        .service(login_page)
        .service(login_submit)
        .service(logout)
        .service(verify)
        .service(verify_resend)
        .service(forgot_page)
        .service(forgot_submit)
        .service(reset_page)
        .service(reset_submit)
        .service(settings_page)
        .service(mfa_login_page)
        .service(mfa_login_submit)
        .service(mfa_settings)
        .service(mfa_enable)
        .service(mfa_disable)
        .service(settings_profile)
        .service(settings_avatar)
        .service(settings_password)
        .service(settings_email)
        .service(settings_email_confirm)
        .service(settings_logout_others)
        .service(switch_language)
        .service(admin_users)
        .service(admin_grant_role)
        .service(admin_revoke_role);
}

/// A page that states one thing (verification done, link expired…).
#[derive(Template)]
#[template(path = "accounts/message.html")]
pub struct MessagePage {
    pub ctx: PageCtx,
    pub title: String,
    pub body: String,
    pub link: Option<(String, String)>,
}

fn message(
    ctx: PageCtx,
    title_key: &str,
    body_key: &str,
    link: Option<(&str, &str)>,
) -> Result<HttpResponse, AppError> {
    let page = MessagePage {
        title: ctx.t(title_key).into_owned(),
        body: ctx.t(body_key).into_owned(),
        link: link.map(|(href, key)| (href.to_string(), ctx.t(key).into_owned())),
        ctx,
    };
    web::render(&page)
}

// ---------- sign-up ----------

#[derive(Template)]
#[template(path = "accounts/signup.html")]
struct SignupPage {
    ctx: PageCtx,
    form: SignupForm,
    errors: FieldErrors,
}

#[get("/signup")]
async fn signup_page(ctx: PageCtx, viewer: Viewer) -> Result<HttpResponse, AppError> {
    if viewer.user.is_some() {
        return Ok(web::redirect("/"));
    }
    web::render(&SignupPage {
        ctx,
        form: SignupForm::default(),
        errors: FieldErrors::new(),
    })
}

fn session_cookie(
    req: &HttpRequest,
    state: &State,
    token: String,
) -> actix_web::cookie::Cookie<'static> {
    let age = CookieDuration::seconds(state.settings.session_absolute.as_secs() as i64);
    web::cookie(
        web::SESSION_COOKIE,
        token,
        web::is_secure(req, state.settings.cookie_secure),
        Some(age),
    )
}

fn lang_cookie(req: &HttpRequest, state: &State, l: Locale) -> actix_web::cookie::Cookie<'static> {
    web::cookie(
        web::LANG_COOKIE,
        l.code().to_string(),
        web::is_secure(req, state.settings.cookie_secure),
        Some(CookieDuration::days(365)),
    )
}

fn login_limits(state: &State) -> LoginLimits {
    let s = &state.settings;
    LoginLimits {
        account: Limits {
            max_failures: s.login_max_failures_account,
            base_delay_secs: s.login_base_delay_secs,
            max_delay_secs: s.login_max_delay_secs,
        },
        ip: Limits {
            max_failures: s.login_max_failures_ip,
            base_delay_secs: s.login_base_delay_secs,
            max_delay_secs: s.login_max_delay_secs,
        },
    }
}

#[post("/signup")]
async fn signup_submit(
    req: HttpRequest,
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    CsrfForm(form): CsrfForm<SignupForm>,
) -> Result<HttpResponse, AppError> {
    let locale = ctx.locale;
    let f = form.clone();
    let (ip, ua, visitor) = (
        viewer.ip.clone(),
        viewer.user_agent.clone(),
        viewer.visitor.clone(),
    );
    let result = web::db(&state, move |c, st| {
        let user = service::signup(c, &f, locale, &st.settings.base_url)?;
        let token = super::session::create(
            c,
            user.id,
            st.settings.session_absolute,
            &ip,
            &ua,
            super::session::Mfa::Off,
        )?;
        carry_visitor_cart(c, user.id, &visitor, st.clock.now());
        Ok((user, token))
    })
    .await;
    match result {
        Ok((_user, token)) => {
            let mut resp = web::redirect_flash("/", FlashLevel::Success, "flash.signed_up");
            let _ = resp.add_cookie(&session_cookie(&req, &state, token));
            Ok(resp)
        }
        Err(AppError::Invalid(errors)) => {
            let form = SignupForm {
                password: String::new(),
                password_confirm: String::new(),
                ..form
            };
            web::render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &SignupPage { ctx, form, errors },
            )
        }
        Err(e) => Err(e),
    }
}

// ---------- login / logout ----------

/// The cart an anonymous visitor filled in this browser carries over to the account when it
/// signs in (or up): the only moment a visitor cart can gain an owner, so cart and checkout
/// pages never look for one. A failure here is logged and does not stop the sign-in.
fn carry_visitor_cart(
    c: &mut crate::db::DbConn,
    user_id: i64,
    visitor: &str,
    now: chrono::NaiveDateTime,
) {
    if let Err(e) = crate::orders::service::merge_visitor_cart(c, user_id, visitor, now) {
        tracing::warn!(error = %e, user_id, "the visitor's cart did not carry over");
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LoginForm {
    email: String,
    password: String,
    next: String,
}

#[derive(Template)]
#[template(path = "accounts/login.html")]
struct LoginPage {
    ctx: PageCtx,
    email: String,
    next: String,
    failed: bool,
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

#[get("/login")]
async fn login_page(
    ctx: PageCtx,
    viewer: Viewer,
    q: aw::Query<NextQuery>,
) -> Result<HttpResponse, AppError> {
    let next = web::safe_next(q.next.as_deref());
    if viewer.user.is_some() {
        return Ok(web::redirect(&next));
    }
    if viewer.pending.is_some() {
        let q: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
        return Ok(web::redirect(&format!("/login/mfa?next={q}")));
    }
    web::render(&LoginPage {
        ctx,
        email: String::new(),
        next,
        failed: false,
    })
}

#[post("/login")]
async fn login_submit(
    req: HttpRequest,
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> Result<HttpResponse, AppError> {
    let next = web::safe_next(Some(&form.next));
    if form.email.trim().is_empty() || form.password.is_empty() || form.password.len() > 1024 {
        return web::render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &LoginPage {
                ctx,
                email: form.email.chars().take(254).collect(),
                next,
                failed: true,
            },
        );
    }
    let limits = login_limits(&state);
    let (email, password) = (form.email.clone(), form.password.clone());
    let old_token = req
        .cookie(web::SESSION_COOKIE)
        .map(|c| c.value().to_string());
    let result = web::db(&state, move |c, st| {
        if let Some(old) = old_token {
            super::session::revoke_token(c, &old)?;
        }
        let signed_in = service::login(
            c,
            &email,
            &password,
            &viewer.ip,
            &viewer.user_agent,
            limits,
            st.settings.session_absolute,
        )?;
        carry_visitor_cart(c, signed_in.0.id, &viewer.visitor, st.clock.now());
        Ok(signed_in)
    })
    .await;
    match result {
        Ok((user, token, mfa)) => {
            let mut resp = if mfa == super::session::Mfa::Pending {
                let q: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
                web::redirect(&format!("/login/mfa?next={q}"))
            } else {
                web::redirect_flash(&next, FlashLevel::Success, "flash.logged_in")
            };
            let _ = resp.add_cookie(&session_cookie(&req, &state, token));
            if let Some(l) = user.locale.as_deref().and_then(Locale::parse) {
                let _ = resp.add_cookie(&lang_cookie(&req, &state, l));
            }
            Ok(resp)
        }
        Err(AppError::Invalid(_)) => web::render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &LoginPage {
                ctx,
                email: form.email.chars().take(254).collect(),
                next,
                failed: true,
            },
        ),
        Err(e) => Err(e),
    }
}

use crate::web::Empty;

#[post("/logout")]
async fn logout(
    req: HttpRequest,
    state: State,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<HttpResponse, AppError> {
    if let Some(token) = req
        .cookie(web::SESSION_COOKIE)
        .map(|c| c.value().to_string())
    {
        web::db(&state, move |c, _| service::logout(c, &token)).await?;
    }
    let mut resp = web::redirect_flash("/", FlashLevel::Info, "flash.logged_out");
    let _ = resp.add_cookie(&web::removal_cookie(web::SESSION_COOKIE));
    Ok(resp)
}

// ---------- email verification ----------

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

#[get("/verify")]
async fn verify(
    state: State,
    ctx: PageCtx,
    q: aw::Query<TokenQuery>,
) -> Result<HttpResponse, AppError> {
    let token = q.token.clone().unwrap_or_default();
    match web::db(&state, move |c, _| service::verify_email(c, &token)).await {
        Ok(()) => message(
            ctx,
            "verify.done_title",
            "verify.done_body",
            Some(("/", "nav.home")),
        ),
        Err(AppError::BadRequest(_)) => message(
            ctx,
            "verify.bad_title",
            "verify.bad_body",
            Some(("/settings", "nav.settings")),
        ),
        Err(e) => Err(e),
    }
}

#[post("/verify/resend")]
async fn verify_resend(
    state: State,
    viewer: Viewer,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.id;
    match web::db(&state, move |c, st| {
        service::resend_verification(c, me, &st.settings.base_url)
    })
    .await
    {
        Ok(()) => Ok(web::redirect_flash(
            "/settings",
            FlashLevel::Success,
            "flash.verification_sent",
        )),
        Err(AppError::Conflict(_)) => Ok(web::redirect_flash(
            "/settings",
            FlashLevel::Info,
            "verify.already",
        )),
        Err(e) => Err(e),
    }
}

// ---------- password reset ----------

#[derive(Template)]
#[template(path = "accounts/forgot.html")]
struct ForgotPage {
    ctx: PageCtx,
    email: String,
    errors: FieldErrors,
}

#[get("/password/forgot")]
async fn forgot_page(ctx: PageCtx) -> Result<HttpResponse, AppError> {
    web::render(&ForgotPage {
        ctx,
        email: String::new(),
        errors: FieldErrors::new(),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ForgotForm {
    email: String,
}

#[post("/password/forgot")]
async fn forgot_submit(
    state: State,
    ctx: PageCtx,
    CsrfForm(form): CsrfForm<ForgotForm>,
) -> Result<HttpResponse, AppError> {
    let email = form.email.clone();
    let limits = login_limits(&state).account;
    match web::db(&state, move |c, st| {
        service::request_reset(c, &email, &st.settings.base_url, limits)
    })
    .await
    {
        Ok(()) => message(
            ctx,
            "reset.sent_title",
            "reset.sent_body",
            Some(("/login", "nav.login")),
        ),
        Err(AppError::Invalid(errors)) => web::render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &ForgotPage {
                ctx,
                email: form.email.chars().take(254).collect(),
                errors,
            },
        ),
        Err(e) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "accounts/reset.html")]
struct ResetPage {
    ctx: PageCtx,
    token: String,
    errors: FieldErrors,
}

#[get("/password/reset")]
async fn reset_page(
    state: State,
    ctx: PageCtx,
    q: aw::Query<TokenQuery>,
) -> Result<HttpResponse, AppError> {
    let token = q.token.clone().unwrap_or_default();
    let t = token.clone();
    if !web::db(&state, move |c, _| service::reset_token_valid(c, &t)).await? {
        return message(
            ctx,
            "reset.bad_title",
            "reset.bad_body",
            Some(("/password/forgot", "reset.again")),
        );
    }
    web::render(&ResetPage {
        ctx,
        token,
        errors: FieldErrors::new(),
    })
}

#[post("/password/reset")]
async fn reset_submit(
    state: State,
    ctx: PageCtx,
    CsrfForm(form): CsrfForm<NewPasswordForm>,
) -> Result<HttpResponse, AppError> {
    let f = form.clone();
    match web::db(&state, move |c, _| service::reset_password(c, &f)).await {
        Ok(()) => {
            let mut resp =
                web::redirect_flash("/login", FlashLevel::Success, "flash.password_reset");
            let _ = resp.add_cookie(&web::removal_cookie(web::SESSION_COOKIE));
            Ok(resp)
        }
        Err(AppError::Invalid(errors)) => web::render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &ResetPage {
                ctx,
                token: form.token,
                errors,
            },
        ),
        Err(AppError::BadRequest(_)) => message(
            ctx,
            "reset.bad_title",
            "reset.bad_body",
            Some(("/password/forgot", "reset.again")),
        ),
        Err(e) => Err(e),
    }
}

// ---------- settings ----------

#[derive(Template)]
#[template(path = "accounts/settings.html")]
struct SettingsPage {
    ctx: PageCtx,
    user: User,
    errors: FieldErrors,
    /// Which form the errors belong to.
    section: &'static str,
    other_sessions: i64,
    new_email: String,
}

impl SettingsPage {
    /// The translated error of `field`, when the errors belong to `section`'s form.
    fn err(&self, section: &str, field: &str) -> Option<String> {
        (self.section == section)
            .then(|| self.ctx.field_error(&self.errors, field))
            .flatten()
    }
    fn initial(&self) -> String {
        web::initial(&self.user.display_name)
    }
    fn locale_is(&self, code: &str) -> bool {
        self.user
            .locale
            .as_deref()
            .and_then(Locale::parse)
            .unwrap_or(self.ctx.locale)
            .code()
            == code
    }
}

async fn settings_render(
    state: &State,
    ctx: PageCtx,
    viewer: &Viewer,
    errors: FieldErrors,
    section: &'static str,
    new_email: String,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let (user, sessions) = web::db(state, move |c, _| {
        Ok((
            service::find_user(c, me.id)?,
            super::session::count_for_user(c, me.id)?,
        ))
    })
    .await?;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    web::render_status(
        status,
        &SettingsPage {
            ctx,
            user,
            errors,
            section,
            other_sessions: (sessions - 1).max(0),
            new_email,
        },
    )
}

#[get("/settings")]
async fn settings_page(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
) -> Result<HttpResponse, AppError> {
    settings_render(&state, ctx, &viewer, FieldErrors::new(), "", String::new()).await
}

/// Runs a settings form's service call: success → flash and back to settings; invalid input →
/// the settings page again with the form's errors.
async fn settings_result(
    state: &State,
    ctx: PageCtx,
    viewer: &Viewer,
    section: &'static str,
    result: Result<(), AppError>,
    ok_flash: &str,
    new_email: String,
) -> Result<HttpResponse, AppError> {
    match result {
        Ok(()) => Ok(web::redirect_flash(
            "/settings",
            FlashLevel::Success,
            ok_flash,
        )),
        Err(AppError::Invalid(errors)) => {
            settings_render(state, ctx, viewer, errors, section, new_email).await
        }
        Err(e) => Err(e),
    }
}

#[post("/settings/profile")]
async fn settings_profile(
    req: HttpRequest,
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    CsrfForm(form): CsrfForm<ProfileForm>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let locale = Locale::parse(&form.locale);
    let result = web::db(&state, move |c, _| service::update_profile(c, &me, &form)).await;
    let ok = result.is_ok();
    let mut resp = settings_result(
        &state,
        ctx,
        &viewer,
        "profile",
        result,
        "flash.profile_saved",
        String::new(),
    )
    .await?;
    if let (true, Some(l)) = (ok, locale) {
        let _ = resp.add_cookie(&lang_cookie(&req, &state, l));
    }
    Ok(resp)
}

#[post("/settings/avatar")]
async fn settings_avatar(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    form: CsrfMultipart,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let Some(file) = form.file("avatar").cloned() else {
        return settings_result(
            &state,
            ctx,
            &viewer,
            "avatar",
            Err(AppError::field("avatar", "avatar_missing")),
            "",
            String::new(),
        )
        .await;
    };
    let result = web::db(&state, move |c, st| {
        service::set_avatar(c, &me, &file.bytes, st.settings.max_avatar_bytes).map(|_| ())
    })
    .await;
    settings_result(
        &state,
        ctx,
        &viewer,
        "avatar",
        result,
        "flash.avatar_saved",
        String::new(),
    )
    .await
}

#[post("/settings/password")]
async fn settings_password(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    CsrfForm(form): CsrfForm<NewPasswordForm>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let result = web::db(&state, move |c, _| service::change_password(c, &me, &form)).await;
    settings_result(
        &state,
        ctx,
        &viewer,
        "password",
        result,
        "flash.password_changed",
        String::new(),
    )
    .await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EmailForm {
    current_password: String,
    new_email: String,
}

#[post("/settings/email")]
async fn settings_email(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    CsrfForm(form): CsrfForm<EmailForm>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let shown: String = form.new_email.chars().take(254).collect();
    let result = web::db(&state, move |c, st| {
        service::request_email_change(
            c,
            &me,
            &form.current_password,
            &form.new_email,
            &st.settings.base_url,
        )
    })
    .await;
    settings_result(
        &state,
        ctx,
        &viewer,
        "email",
        result,
        "flash.email_change_sent",
        shown,
    )
    .await
}

#[get("/settings/email/confirm")]
async fn settings_email_confirm(
    state: State,
    ctx: PageCtx,
    q: aw::Query<TokenQuery>,
) -> Result<HttpResponse, AppError> {
    let token = q.token.clone().unwrap_or_default();
    match web::db(&state, move |c, _| service::confirm_email_change(c, &token)).await {
        Ok(()) => message(
            ctx,
            "email_change.done_title",
            "email_change.done_body",
            Some(("/settings", "nav.settings")),
        ),
        Err(AppError::BadRequest(_)) | Err(AppError::Conflict(_)) => message(
            ctx,
            "verify.bad_title",
            "verify.bad_body",
            Some(("/settings", "nav.settings")),
        ),
        Err(e) => Err(e),
    }
}

#[post("/settings/sessions/revoke")]
async fn settings_logout_others(
    state: State,
    viewer: Viewer,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    web::db(&state, move |c, _| service::logout_others(c, &me)).await?;
    Ok(web::redirect_flash(
        "/settings",
        FlashLevel::Success,
        "flash.sessions_revoked",
    ))
}

// ---------- language, media ----------

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LangForm {
    lang: String,
    next: String,
}

#[post("/lang")]
async fn switch_language(
    req: HttpRequest,
    state: State,
    viewer: Viewer,
    CsrfForm(form): CsrfForm<LangForm>,
) -> Result<HttpResponse, AppError> {
    let locale = Locale::parse(&form.lang).ok_or(AppError::BadRequest("error.bad_form"))?;
    if let Some(me) = viewer.user.as_ref().map(|u| u.id) {
        web::db(&state, move |c, _| service::set_locale(c, me, locale)).await?;
    }
    let mut resp = web::redirect(&web::safe_next(Some(&form.next)));
    let _ = resp.add_cookie(&lang_cookie(&req, &state, locale));
    Ok(resp)
}

#[get("/media/{id}")]
async fn media(
    req: HttpRequest,
    state: State,
    path: aw::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id: i64 = path.parse().map_err(|_| AppError::NotFound)?;
    // The session middleware skips /media/ (images are the most frequent requests); only a
    // private file needs to know who is asking.
    let token = req
        .cookie(web::SESSION_COOKIE)
        .map(|c| c.value().to_string());
    let file = web::db(&state, move |c, st| {
        let file = service::get_media(c, id)?;
        if file.3 {
            let viewer = match token {
                Some(t) if t.len() == 64 => {
                    super::session::lookup(c, &t, st.settings.session_idle)?
                }
                _ => None,
            };
            if !service::media_visible(c, id, viewer.as_ref())? {
                return Err(AppError::NotFound);
            }
        }
        Ok(file)
    })
    .await?;
    Ok(web::media_response(file))
}

// ---------- admin: accounts and roles ----------

#[derive(Template)]
#[template(path = "accounts/admin_users.html")]
struct AdminUsersPage {
    ctx: PageCtx,
    q: String,
    list: Paginated<service::UserSummary>,
    roles: [Role; 4],
}

impl AdminUsersPage {
    /// Link to page `n` of the current search.
    fn page_link(&self, n: i64) -> String {
        let q: String = url::form_urlencoded::byte_serialize(self.q.as_bytes()).collect();
        format!("/admin/users?q={q}&page={n}")
    }
    fn role_name(&self, r: &Role) -> String {
        self.ctx.t(&format!("role.{}", r.as_str())).into_owned()
    }
}

#[derive(Deserialize)]
struct UsersQuery {
    q: Option<String>,
    page: Option<i64>,
}

#[get("/admin/users")]
async fn admin_users(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    q: aw::Query<UsersQuery>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_role(Role::Admin)?.clone();
    let query: String = q.q.clone().unwrap_or_default().chars().take(100).collect();
    let page = PageQuery { page: q.page };
    let qq = query.clone();
    let list = web::db(&state, move |c, _| service::list_users(c, &me, &qq, page)).await?;
    web::render(&AdminUsersPage {
        ctx,
        q: query,
        list,
        roles: Role::GRANTABLE,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RoleForm {
    role: String,
    back: String,
}

fn parse_grantable(s: &str) -> Result<Role, AppError> {
    Role::parse(s)
        .filter(|r| Role::GRANTABLE.contains(r))
        .ok_or(AppError::BadRequest("error.bad_form"))
}

type RoleChange =
    fn(&mut crate::db::DbConn, &super::SessionUser, i64, Role) -> Result<(), AppError>;

/// Grant and revoke differ only in the service call and the message.
async fn change_role(
    state: State,
    viewer: Viewer,
    id: i64,
    form: RoleForm,
    change: RoleChange,
    done: &str,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_role(Role::Admin)?.clone();
    let role = parse_grantable(&form.role)?;
    web::db(&state, move |c, _| change(c, &me, id, role)).await?;
    Ok(web::redirect_flash(
        &web::safe_next(Some(&form.back)),
        FlashLevel::Success,
        done,
    ))
}

#[post("/admin/users/{id}/roles")]
async fn admin_grant_role(
    state: State,
    viewer: Viewer,
    path: aw::Path<i64>,
    CsrfForm(form): CsrfForm<RoleForm>,
) -> Result<HttpResponse, AppError> {
    change_role(
        state,
        viewer,
        path.into_inner(),
        form,
        service::grant_role,
        "admin.role_granted",
    )
    .await
}

#[post("/admin/users/{id}/roles/revoke")]
async fn admin_revoke_role(
    state: State,
    viewer: Viewer,
    path: aw::Path<i64>,
    CsrfForm(form): CsrfForm<RoleForm>,
) -> Result<HttpResponse, AppError> {
    change_role(
        state,
        viewer,
        path.into_inner(),
        form,
        service::revoke_role,
        "admin.role_revoked",
    )
    .await
}

/// The images posted in a form's `photos` field (evidence, rating photos), checked by content
/// and size; problems go to `errors` under `photos`.
pub fn photos_of(form: &CsrfMultipart, errors: &mut FieldErrors) -> Vec<(String, Vec<u8>)> {
    let mut photos = Vec::new();
    for f in form
        .files
        .iter()
        .filter(|f| f.field == "photos" && !f.bytes.is_empty())
    {
        match service::sniff_image(&f.bytes) {
            Some(_) if f.bytes.len() > MAX_PHOTO_BYTES => errors.add("photos", "photo_size"),
            Some(ct) => photos.push((ct.to_string(), f.bytes.clone())),
            None => errors.add("photos", "photo_type"),
        }
    }
    photos
}

/// The size limit of one posted photo.
pub const MAX_PHOTO_BYTES: usize = 2 * 1024 * 1024;

// ---------- second factor ----------

#[derive(Template)]
#[template(path = "accounts/mfa_login.html")]
struct MfaLoginPage {
    ctx: PageCtx,
    next: String,
    failed: bool,
}

#[get("/login/mfa")]
async fn mfa_login_page(
    ctx: PageCtx,
    viewer: Viewer,
    q: aw::Query<NextQuery>,
) -> Result<HttpResponse, AppError> {
    let next = web::safe_next(q.next.as_deref());
    if viewer.user.is_some() {
        return Ok(web::redirect(&next));
    }
    if viewer.pending.is_none() {
        let q: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
        return Ok(web::redirect(&format!("/login?next={q}")));
    }
    web::render(&MfaLoginPage {
        ctx,
        next,
        failed: false,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CodeForm {
    code: String,
    next: String,
    secret: String,
}

#[post("/login/mfa")]
async fn mfa_login_submit(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> Result<HttpResponse, AppError> {
    let next = web::safe_next(Some(&form.next));
    let Some(pending) = viewer.pending.clone() else {
        return Ok(web::redirect("/login"));
    };
    let limits = login_limits(&state);
    let now = chrono::Utc::now().naive_utc();
    match web::db(&state, move |c, _| {
        service::verify_login_code(c, &pending, &form.code, limits, now)
    })
    .await
    {
        Ok(()) => Ok(web::redirect_flash(
            &next,
            FlashLevel::Success,
            "flash.logged_in",
        )),
        Err(AppError::Invalid(_)) => web::render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &MfaLoginPage {
                ctx,
                next,
                failed: true,
            },
        ),
        Err(e) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "accounts/mfa_settings.html")]
struct MfaSettingsPage {
    ctx: PageCtx,
    enabled: bool,
    secret: String,
    uri: String,
    errors: FieldErrors,
}

async fn render_mfa(
    state: &State,
    ctx: PageCtx,
    viewer: &Viewer,
    secret: Option<String>,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let (id, email) = (me.id, me.email.clone());
    let enabled = web::db(state, move |c, _| service::mfa_enabled(c, id)).await?;
    let secret = secret.unwrap_or_else(super::totp::new_secret);
    let label: String =
        url::form_urlencoded::byte_serialize(format!("haodian:{email}").as_bytes()).collect();
    let uri = format!("otpauth://totp/{label}?secret={secret}&issuer=haodian&digits=6&period=30");
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    web::render_status(
        status,
        &MfaSettingsPage {
            ctx,
            enabled,
            secret,
            uri,
            errors,
        },
    )
}

#[get("/settings/mfa")]
async fn mfa_settings(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
) -> Result<HttpResponse, AppError> {
    render_mfa(&state, ctx, &viewer, None, FieldErrors::new()).await
}

#[post("/settings/mfa/enable")]
async fn mfa_enable(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let now = chrono::Utc::now().naive_utc();
    let (secret, code) = (form.secret.clone(), form.code.clone());
    match web::db(&state, move |c, _| {
        service::enable_mfa(c, &me, &secret, &code, now)
    })
    .await
    {
        Ok(()) => Ok(web::redirect_flash(
            "/settings/mfa",
            FlashLevel::Success,
            "mfa.enabled",
        )),
        Err(AppError::Invalid(e)) => render_mfa(&state, ctx, &viewer, Some(form.secret), e).await,
        Err(e) => Err(e),
    }
}

#[post("/settings/mfa/disable")]
async fn mfa_disable(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let now = chrono::Utc::now().naive_utc();
    match web::db(&state, move |c, _| {
        service::disable_mfa(c, &me, &form.code, now)
    })
    .await
    {
        Ok(()) => Ok(web::redirect_flash(
            "/settings/mfa",
            FlashLevel::Success,
            "mfa.disabled",
        )),
        Err(AppError::Invalid(e)) => render_mfa(&state, ctx, &viewer, None, e).await,
        Err(e) => Err(e),
    }
}
