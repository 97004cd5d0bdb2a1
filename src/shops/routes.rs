//! Shop pages: the merchant's shop (open, settings, staff, authorized accounts), account
//! profiles `/@{handle}`, storefronts `/shops/{slug}` and the admin shop list.

use actix_web::http::StatusCode;
use actix_web::{get, post, web as aw, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::model::{Category, EntityType, QualificationKind, ShopRole, ShopStatus};
use super::service::{self, AuthorizationRules, Membership, OpenShopForm};
use crate::accounts::{Role, Viewer};
use crate::error::{AppError, FieldErrors};
use crate::web::{self, CsrfForm, CsrfMultipart, FlashLevel, PageCtx, PageQuery, Paginated, State};

/// The buyer pages, registered before every other route (actix tries routes in order, and
/// these are the busiest).
pub fn public(cfg: &mut aw::ServiceConfig) {
    cfg.service(storefront).service(profile);
}

pub fn routes(cfg: &mut aw::ServiceConfig) {
    cfg.service(merchant_home)
        .service(open_page)
        .service(open_submit)
        .service(settings_page)
        .service(settings_submit)
        .service(staff_page)
        .service(staff_add)
        .service(staff_remove)
        .service(auth_page)
        .service(auth_add)
        .service(auth_revoke)
        .service(follow)
        .service(unfollow)
        .service(admin_shops)
        .service(admin_categories)
        .service(admin_category_save)
        .service(admin_rebind);
}

fn rules(state: &State) -> AuthorizationRules {
    let s = &state.settings;
    AuthorizationRules {
        max_accounts: s.authorized_max,
        min_followers: s.authorized_min_followers,
        min_days_before_revoke: s.authorized_min_days,
    }
}

/// Translation helpers shared by the shop templates.
pub trait ShopText {
    fn ctx(&self) -> &PageCtx;
    fn status_name(&self, status: &str) -> String {
        self.ctx().t(&format!("shop.status.{status}")).into_owned()
    }
    fn entity_name(&self, e: &str) -> String {
        self.ctx().t(&format!("shop.entity.{e}")).into_owned()
    }
    fn date(&self, t: &chrono::NaiveDateTime) -> String {
        t.format("%Y-%m-%d").to_string()
    }
}

// ---------- merchant home ----------

#[derive(Template)]
#[template(path = "shops/merchant_home.html")]
struct MerchantHome {
    ctx: PageCtx,
    membership: Option<Membership>,
    status: Option<ShopStatus>,
}

impl ShopText for MerchantHome {
    fn ctx(&self) -> &PageCtx {
        &self.ctx
    }
}

#[get("/merchant")]
async fn merchant_home(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.id;
    let membership = web::db(&state, move |c, _| service::membership(c, me)).await?;
    let now = state.clock.now();
    let status = membership.as_ref().map(|m| m.shop.status_at(now));
    web::render(&MerchantHome {
        ctx,
        membership,
        status,
    })
}

// ---------- opening a shop ----------

#[derive(Template)]
#[template(path = "shops/open.html")]
struct OpenPage {
    ctx: PageCtx,
    form: OpenShopForm,
    categories: Vec<Category>,
    errors: FieldErrors,
    kinds: [QualificationKind; 5],
    entities: [EntityType; 3],
}

impl OpenPage {
    fn err(&self, field: &str) -> Option<String> {
        self.ctx.field_error(&self.errors, field)
    }
    fn kind_name(&self, k: &QualificationKind) -> String {
        self.ctx
            .t(&format!("shop.qual.{}", k.as_str()))
            .into_owned()
    }
    fn entity_name(&self, e: &EntityType) -> String {
        self.ctx
            .t(&format!("shop.entity.{}", e.as_str()))
            .into_owned()
    }
    fn category_label(&self, c: &Category) -> String {
        let quals: Vec<String> = c.required().iter().map(|k| self.kind_name(k)).collect();
        let deposit = crate::i18n::money(c.deposit_fen);
        let mut s = format!(
            "{} · {} {}",
            c.name(self.ctx.locale),
            self.ctx.t("shop.deposit"),
            deposit
        );
        if !quals.is_empty() {
            s.push_str(&format!(
                " · {} {}",
                self.ctx.t("shop.needs"),
                quals.join(", ")
            ));
        }
        s
    }
}

async fn open_render(
    state: &State,
    ctx: PageCtx,
    form: OpenShopForm,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    let categories = web::db(state, |c, _| service::top_categories(c)).await?;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    web::render_status(
        status,
        &OpenPage {
            ctx,
            form,
            categories,
            errors,
            kinds: QualificationKind::ALL,
            entities: EntityType::ALL,
        },
    )
}

#[get("/merchant/shop/open")]
async fn open_page(state: State, ctx: PageCtx, viewer: Viewer) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.id;
    if web::db(&state, move |c, _| service::shop_of_official(c, me))
        .await?
        .is_some()
    {
        return Ok(web::redirect("/merchant"));
    }
    let form = OpenShopForm {
        entity_type: "individual".into(),
        ..OpenShopForm::default()
    };
    open_render(&state, ctx, form, FieldErrors::new()).await
}

#[post("/merchant/shop/open")]
async fn open_submit(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    mp: CsrfMultipart,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let field = |n: &str| mp.field(n).unwrap_or("").to_string();
    let form = OpenShopForm {
        name: field("name"),
        slug: field("slug"),
        description: field("description"),
        main_category_id: field("main_category_id"),
        entity_type: field("entity_type"),
        qualifications: QualificationKind::ALL
            .iter()
            .map(|k| {
                let doc = mp
                    .file(&format!("{}_doc", k.as_str()))
                    .map(|f| f.bytes.clone());
                (*k, field(k.as_str()), doc)
            })
            .filter(|(_, n, d)| !n.trim().is_empty() || d.is_some())
            .collect(),
    };
    let f = form.clone();
    let now = state.clock.now();
    match web::db(&state, move |c, _| service::open_shop(c, &me, &f, now)).await {
        Ok(_) => Ok(web::redirect_flash(
            "/merchant",
            FlashLevel::Success,
            "shop.opened",
        )),
        Err(AppError::Invalid(errors)) => {
            let form = OpenShopForm {
                qualifications: form
                    .qualifications
                    .into_iter()
                    .map(|(k, n, _)| (k, n, None))
                    .collect(),
                ..form
            };
            open_render(&state, ctx, form, errors).await
        }
        Err(e) => Err(e),
    }
}

// ---------- shop settings ----------

#[derive(Template)]
#[template(path = "shops/settings.html")]
struct SettingsPage {
    ctx: PageCtx,
    m: Membership,
    name: String,
    description: String,
    errors: FieldErrors,
}

impl SettingsPage {
    fn err(&self, field: &str) -> Option<String> {
        self.ctx.field_error(&self.errors, field)
    }
}

#[get("/merchant/shop")]
async fn settings_page(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let m = web::db(&state, move |c, _| {
        service::require_shop_role(c, &me, ShopRole::Owner)
    })
    .await?;
    let (name, description) = (m.shop.name.clone(), m.shop.description.clone());
    web::render(&SettingsPage {
        ctx,
        m,
        name,
        description,
        errors: FieldErrors::new(),
    })
}

#[post("/merchant/shop")]
async fn settings_submit(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    mp: CsrfMultipart,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let name = mp.field("name").unwrap_or("").to_string();
    let description = mp.field("description").unwrap_or("").to_string();
    let logo = mp.file("logo").map(|f| f.bytes.clone());
    let (n, d, now) = (name.clone(), description.clone(), state.clock.now());
    let me2 = me.clone();
    match web::db(&state, move |c, _| {
        service::update_shop(c, &me2, &n, &d, logo.as_deref(), now)
    })
    .await
    {
        Ok(()) => Ok(web::redirect_flash(
            "/merchant/shop",
            FlashLevel::Success,
            "shop.saved",
        )),
        Err(AppError::Invalid(errors)) => {
            let m = web::db(&state, move |c, _| {
                service::require_shop_role(c, &me, ShopRole::Owner)
            })
            .await?;
            web::render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &SettingsPage {
                    ctx,
                    m,
                    name,
                    description,
                    errors,
                },
            )
        }
        Err(e) => Err(e),
    }
}

// ---------- staff ----------

#[derive(Template)]
#[template(path = "shops/staff.html")]
struct StaffPage {
    ctx: PageCtx,
    m: Membership,
    staff: Vec<service::StaffMember>,
    handle: String,
    errors: FieldErrors,
}

impl ShopText for StaffPage {
    fn ctx(&self) -> &PageCtx {
        &self.ctx
    }
}

impl StaffPage {
    fn err(&self, field: &str) -> Option<String> {
        self.ctx.field_error(&self.errors, field)
    }
    fn role_name(&self, r: &str) -> String {
        self.ctx.t(&format!("shop.role.{r}")).into_owned()
    }
}

async fn staff_render(
    state: &State,
    ctx: PageCtx,
    viewer: &Viewer,
    handle: String,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let (m, staff) = web::db(state, move |c, _| service::list_staff(c, &me)).await?;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    web::render_status(
        status,
        &StaffPage {
            ctx,
            m,
            staff,
            handle,
            errors,
        },
    )
}

#[get("/merchant/staff")]
async fn staff_page(state: State, ctx: PageCtx, viewer: Viewer) -> Result<HttpResponse, AppError> {
    staff_render(&state, ctx, &viewer, String::new(), FieldErrors::new()).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct HandleForm {
    handle: String,
    role: String,
}

#[post("/merchant/staff")]
async fn staff_add(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    CsrfForm(form): CsrfForm<HandleForm>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let (h, r, now) = (form.handle.clone(), form.role.clone(), state.clock.now());
    match web::db(&state, move |c, _| service::add_staff(c, &me, &h, &r, now)).await {
        Ok(()) => Ok(web::redirect_flash(
            "/merchant/staff",
            FlashLevel::Success,
            "shop.staff_added",
        )),
        Err(AppError::Invalid(errors)) => {
            staff_render(
                &state,
                ctx,
                &viewer,
                form.handle.chars().take(40).collect(),
                errors,
            )
            .await
        }
        Err(e) => Err(e),
    }
}

use crate::web::Empty;

#[post("/merchant/staff/{user_id}/remove")]
async fn staff_remove(
    state: State,
    viewer: Viewer,
    path: aw::Path<i64>,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let uid = path.into_inner();
    web::db(&state, move |c, _| service::remove_staff(c, &me, uid)).await?;
    Ok(web::redirect_flash(
        "/merchant/staff",
        FlashLevel::Success,
        "shop.staff_removed",
    ))
}

// ---------- authorized accounts ----------

#[derive(Template)]
#[template(path = "shops/authorizations.html")]
struct AuthPage {
    ctx: PageCtx,
    m: Membership,
    list: Vec<service::AuthorizedAccount>,
    rules: AuthorizationRules,
    handle: String,
    errors: FieldErrors,
    now: chrono::NaiveDateTime,
}

impl ShopText for AuthPage {
    fn ctx(&self) -> &PageCtx {
        &self.ctx
    }
}

impl AuthPage {
    fn err(&self, field: &str) -> Option<String> {
        self.ctx.field_error(&self.errors, field)
    }
    fn rules_text(&self) -> String {
        crate::i18n::tf(
            self.ctx.locale,
            "shop.auth_rules",
            &[
                ("max", &self.rules.max_accounts.to_string()),
                ("followers", &self.rules.min_followers.to_string()),
                ("days", &self.rules.min_days_before_revoke.to_string()),
            ],
        )
    }
}

async fn auth_render(
    state: &State,
    ctx: PageCtx,
    viewer: &Viewer,
    handle: String,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let r = rules(state);
    let (m, list) = web::db(state, move |c, _| service::list_authorizations(c, &me, r)).await?;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    web::render_status(
        status,
        &AuthPage {
            ctx,
            m,
            list,
            rules: r,
            handle,
            errors,
            now: state.clock.now(),
        },
    )
}

#[get("/merchant/authorizations")]
async fn auth_page(state: State, ctx: PageCtx, viewer: Viewer) -> Result<HttpResponse, AppError> {
    auth_render(&state, ctx, &viewer, String::new(), FieldErrors::new()).await
}

#[post("/merchant/authorizations")]
async fn auth_add(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    CsrfForm(form): CsrfForm<HandleForm>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let (h, r, now) = (form.handle.clone(), rules(&state), state.clock.now());
    match web::db(&state, move |c, _| {
        service::authorize_account(c, &me, &h, r, now)
    })
    .await
    {
        Ok(()) => Ok(web::redirect_flash(
            "/merchant/authorizations",
            FlashLevel::Success,
            "shop.auth_added",
        )),
        Err(AppError::Invalid(errors)) => {
            auth_render(
                &state,
                ctx,
                &viewer,
                form.handle.chars().take(40).collect(),
                errors,
            )
            .await
        }
        Err(e) => Err(e),
    }
}

#[post("/merchant/authorizations/{id}/revoke")]
async fn auth_revoke(
    state: State,
    viewer: Viewer,
    path: aw::Path<i64>,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let (id, r, now) = (path.into_inner(), rules(&state), state.clock.now());
    web::db(&state, move |c, _| {
        service::revoke_authorization(c, &me, id, r, now)
    })
    .await?;
    Ok(web::redirect_flash(
        "/merchant/authorizations",
        FlashLevel::Success,
        "shop.auth_revoked",
    ))
}

// ---------- profiles and follows ----------

#[derive(Template)]
#[template(path = "shops/profile.html")]
struct ProfilePage {
    ctx: PageCtx,
    p: service::Profile,
    is_me: bool,
    products: Vec<crate::catalog::model::ProductCard>,
}

impl ProfilePage {
    fn bio_lines(&self) -> Vec<&str> {
        self.p.user.bio.lines().collect()
    }
    fn initial(&self) -> String {
        web::initial(&self.p.user.display_name)
    }
}

#[get("/@{handle}")]
async fn profile(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    path: aw::Path<String>,
) -> Result<HttpResponse, AppError> {
    let handle = path.into_inner().to_ascii_lowercase();
    let me = viewer.user.as_ref().map(|u| u.id);
    let now = state.clock.now();
    let (p, products) = web::db(&state, move |c, _| {
        let p = service::profile(c, &handle, me)?;
        let products = match &p.shop {
            Some((shop, _)) if shop.status_at(now) != ShopStatus::Cleared => {
                crate::catalog::service::shop_products(
                    c,
                    shop.id,
                    "",
                    None,
                    PageQuery { page: None },
                    12,
                    Some(0), // the profile shows the first products, without a pager
                )?
                .items
            }
            _ => Vec::new(),
        };
        Ok((p, products))
    })
    .await?;
    let is_me = me == Some(p.user.id);
    web::render(&ProfilePage {
        ctx,
        p,
        is_me,
        products,
    })
}

#[post("/@{handle}/follow")]
async fn follow(
    state: State,
    viewer: Viewer,
    path: aw::Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let handle = path.into_inner().to_ascii_lowercase();
    let (h, now) = (handle.clone(), state.clock.now());
    web::db(&state, move |c, _| service::follow(c, &me, &h, now)).await?;
    Ok(web::redirect(&format!("/@{handle}")))
}

#[post("/@{handle}/unfollow")]
async fn unfollow(
    state: State,
    viewer: Viewer,
    path: aw::Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let handle = path.into_inner().to_ascii_lowercase();
    let h = handle.clone();
    web::db(&state, move |c, _| service::unfollow(c, &me, &h)).await?;
    Ok(web::redirect(&format!("/@{handle}")))
}

// ---------- storefront ----------

#[derive(Template)]
#[template(path = "shops/storefront.html", whitespace = "minimize")]
struct StorefrontPage {
    ctx: PageCtx,
    s: service::Storefront,
    status: ShopStatus,
    products: Paginated<crate::catalog::model::ProductCard>,
    q: String,
    category: Option<i64>,
    categories: Vec<Category>,
    dsr: Option<crate::dsr::score::Badge>,
}

impl StorefrontPage {
    fn description_lines(&self) -> Vec<&str> {
        self.s.shop.description.lines().collect()
    }
    fn page_link(&self, n: i64) -> String {
        let q: String = url::form_urlencoded::byte_serialize(self.q.as_bytes()).collect();
        let cat = self.category.map(|c| c.to_string()).unwrap_or_default();
        format!("/shops/{}?q={q}&category={cat}&page={n}", self.s.shop.slug)
    }
    fn category_link(&self, c: Option<&Category>) -> String {
        match c {
            Some(c) => format!("/shops/{}?category={}", self.s.shop.slug, c.id),
            None => format!("/shops/{}", self.s.shop.slug),
        }
    }
    fn cat_name(&self, c: &Category) -> String {
        c.name(self.ctx.locale).to_string()
    }
    fn is_category(&self, c: &Category) -> bool {
        self.category == Some(c.id)
    }
    fn notice(&self) -> String {
        self.ctx
            .t(&format!("shop.notice.{}", self.status.as_str()))
            .into_owned()
    }
    fn category_name(&self) -> &str {
        self.s.category.name(self.ctx.locale)
    }
    fn initial(&self) -> String {
        web::initial(&self.s.shop.name)
    }
}

#[derive(Deserialize)]
struct StoreQuery {
    q: Option<String>,
    category: Option<String>,
    page: Option<i64>,
}

/// Products per storefront page.
pub const STORE_PAGE: i64 = 24;

#[get("/shops/{slug}")]
async fn storefront(
    state: State,
    ctx: PageCtx,
    path: aw::Path<String>,
    q: aw::Query<StoreQuery>,
) -> Result<HttpResponse, AppError> {
    let slug = path.into_inner();
    let query: String = q.q.clone().unwrap_or_default().chars().take(60).collect();
    let page = PageQuery { page: q.page };
    let qq = query.clone();
    let category = q.category.as_deref().and_then(|c| c.parse::<i64>().ok());
    let now = state.clock.now();
    let (mut s, products, categories) = web::db_read(&state, move |c, st| {
        // Unfiltered, the shop's statement brings the page of products and their count.
        let unfiltered = qq.trim().is_empty() && category.is_none();
        let grid = unfiltered.then(|| (STORE_PAGE, page.offset(STORE_PAGE)));
        let mut s = service::storefront(c, &slug, grid)?;
        // A cleared shop's products never appear in public.
        if s.shop.status_at(now) == ShopStatus::Cleared {
            let none = Paginated {
                items: Vec::new(),
                page: 1,
                per_page: STORE_PAGE,
                total: 0,
            };
            s.badge = None;
            s.cards.clear();
            return Ok((s, none, Vec::new()));
        }
        let products = if unfiltered {
            Paginated {
                items: std::mem::take(&mut s.cards),
                page: page.number(),
                per_page: STORE_PAGE,
                total: s.listed,
            }
        } else {
            crate::catalog::service::shop_products(
                c, s.shop.id, &qq, category, page, STORE_PAGE, None,
            )?
        };
        let categories = st.search_stats.shop_categories(s.shop.id, || {
            crate::catalog::service::shop_categories(c, s.shop.id)
        })?;
        Ok((s, products, categories))
    })
    .await?;
    let dsr = s.badge.take();
    let status = s.shop.status_at(now);
    web::render(&StorefrontPage {
        ctx,
        s,
        status,
        products,
        q: query,
        category,
        categories,
        dsr,
    })
}

// ---------- admin ----------

#[derive(Template)]
#[template(path = "shops/admin_shops.html")]
struct AdminShopsPage {
    ctx: PageCtx,
    q: String,
    list: Paginated<(super::Shop, String)>,
    is_admin: bool,
}

impl ShopText for AdminShopsPage {
    fn ctx(&self) -> &PageCtx {
        &self.ctx
    }
}

impl AdminShopsPage {
    fn page_link(&self, n: i64) -> String {
        let q: String = url::form_urlencoded::byte_serialize(self.q.as_bytes()).collect();
        format!("/admin/shops?q={q}&page={n}")
    }
}

#[derive(Deserialize)]
struct ListQuery {
    q: Option<String>,
    page: Option<i64>,
}

#[get("/admin/shops")]
async fn admin_shops(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    q: aw::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_role(Role::Moderator)?.clone();
    let is_admin = me.has_role(Role::Admin);
    let query: String = q.q.clone().unwrap_or_default().chars().take(100).collect();
    let page = PageQuery { page: q.page };
    let qq = query.clone();
    let list = web::db(&state, move |c, _| {
        service::admin_list_shops(c, &me, &qq, page)
    })
    .await?;
    web::render(&AdminShopsPage {
        ctx,
        q: query,
        list,
        is_admin,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RebindForm {
    handle: String,
    reason: String,
}

#[post("/admin/shops/{id}/rebind")]
async fn admin_rebind(
    state: State,
    viewer: Viewer,
    path: aw::Path<i64>,
    CsrfForm(form): CsrfForm<RebindForm>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_role(Role::Admin)?.clone();
    let (id, now) = (path.into_inner(), state.clock.now());
    match web::db(&state, move |c, _| {
        service::rebind_official(c, &me, id, &form.handle, &form.reason, now)
    })
    .await
    {
        Ok(()) => Ok(web::redirect_flash(
            "/admin/shops",
            FlashLevel::Success,
            "shop.rebound",
        )),
        Err(AppError::Invalid(errors)) => {
            let key = match errors.0.values().flatten().next().map(String::as_str) {
                Some("user_unknown") => "shop.rebind_unknown_user",
                Some("auth_is_official") => "shop.rebind_taken",
                _ => "shop.rebind_reason",
            };
            Ok(web::redirect_flash("/admin/shops", FlashLevel::Error, key))
        }
        Err(e) => Err(e),
    }
}

// ---------- categories (admins) ----------

#[derive(Template)]
#[template(path = "shops/admin_categories.html")]
struct CategoriesPage {
    ctx: PageCtx,
    categories: Vec<Category>,
    kinds: [QualificationKind; 5],
    errors: FieldErrors,
}

impl CategoriesPage {
    fn kind_name(&self, k: &QualificationKind) -> String {
        self.ctx
            .t(&format!("shop.qual.{}", k.as_str()))
            .into_owned()
    }
    fn deposit(&self, c: &Category) -> String {
        crate::catalog::model::yuan(c.deposit_fen)
    }
    fn requires(&self, c: &Category, k: &QualificationKind) -> bool {
        c.required().contains(k)
    }
    fn parent_name(&self, c: &Category) -> String {
        c.parent_id
            .and_then(|p| self.categories.iter().find(|x| x.id == p))
            .map(|p| p.name(self.ctx.locale).to_string())
            .unwrap_or_default()
    }
    fn err(&self, field: &str) -> Option<String> {
        self.ctx.field_error(&self.errors, field)
    }
}

async fn categories_render(
    state: &State,
    ctx: PageCtx,
    viewer: &Viewer,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    viewer.require_role(Role::Admin)?;
    let categories = web::db(state, |c, _| service::categories(c)).await?;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    web::render_status(
        status,
        &CategoriesPage {
            ctx,
            categories,
            kinds: QualificationKind::ALL,
            errors,
        },
    )
}

#[get("/admin/categories")]
async fn admin_categories(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
) -> Result<HttpResponse, AppError> {
    categories_render(&state, ctx, &viewer, FieldErrors::new()).await
}

#[post("/admin/categories/{id}")]
async fn admin_category_save(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    path: aw::Path<String>,
    CsrfForm(form): CsrfForm<std::collections::HashMap<String, String>>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_role(Role::Admin)?.clone();
    let id = match path.as_str() {
        "new" => None,
        n => Some(n.parse::<i64>().map_err(|_| AppError::NotFound)?),
    };
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    let required: Vec<&str> = QualificationKind::ALL
        .iter()
        .map(|k| k.as_str())
        .filter(|k| form.contains_key(&format!("req_{k}")))
        .collect();
    let f = service::CategoryForm {
        parent_id: get("parent_id"),
        slug: get("slug"),
        name_zh: get("name_zh"),
        name_en: get("name_en"),
        deposit: get("deposit"),
        required: required.join(","),
    };
    let now = state.clock.now();
    match web::db(&state, move |c, _| {
        service::save_category(c, &me, id, &f, now)
    })
    .await
    {
        Ok(_) => Ok(web::redirect_flash(
            "/admin/categories",
            FlashLevel::Success,
            "category.saved",
        )),
        Err(AppError::Invalid(errors)) => categories_render(&state, ctx, &viewer, errors).await,
        Err(e) => Err(e),
    }
}
