//! Governance pages: the merchant's violations and appeals, the moderators' violation record
//! and appeals queue, and suspension by hand. Handlers are thin; the rules live in the
//! services.

use actix_web::http::StatusCode;
use actix_web::{get, post, web as aw, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::appeals::{self, QueueRow, Verdict};
use super::audit::{self, AuditFilter, AuditRow};
use super::editor;
use super::points::Node;
use super::violations::{
    self, Penalty, RecordForm, ShopRecord, TrackStanding, ViolationRow, ViolationType,
};
use crate::accounts::{Role, Viewer};
use crate::error::{AppError, FieldErrors};
use crate::web::{self, CsrfForm, CsrfMultipart, FlashLevel, PageCtx, PageQuery, Paginated, State};

pub const PER_PAGE: i64 = 20;

pub fn routes(cfg: &mut aw::ServiceConfig) {
    cfg.service(merchant_violations)
        .service(merchant_violation)
        .service(appeal_submit)
        .service(evidence)
        .service(admin_violations)
        .service(record_page)
        .service(record_submit)
        .service(admin_appeals)
        .service(admin_appeal)
        .service(appeal_decide)
        .service(shop_suspend)
        .service(shop_reinstate)
        .service(audit_page)
        .service(audit_csv)
        .service(shop_record)
        .service(shop_clear)
        .service(rules_page)
        .service(rules_term_add)
        .service(rules_term_delete)
        .service(rules_param)
        .service(rules_type_save)
        .service(rules_type_retire)
        .service(rules_node_save)
        .service(rules_node_delete)
        .service(rules_score)
        .service(rules_versions)
        .service(rules_version);
}

/// Text helpers the governance templates share.
pub trait GovText {
    fn ctx(&self) -> &PageCtx;
    fn type_name<'a>(&self, t: &'a ViolationType) -> &'a str {
        t.name(self.ctx().locale)
    }
    fn track_name(&self, track: &str) -> String {
        self.ctx()
            .t(&format!("violation.track.{track}"))
            .into_owned()
    }
    fn status_name(&self, status: &str) -> String {
        self.ctx()
            .t(&format!("violation.status.{status}"))
            .into_owned()
    }
    fn appeal_status(&self, status: &str) -> String {
        self.ctx()
            .t(&format!("appeal.status.{status}"))
            .into_owned()
    }
    fn penalty_name(&self, p: &Penalty) -> String {
        let days = p
            .ends_at
            .map(|e| (e - p.starts_at).num_days().to_string())
            .unwrap_or_default();
        let mut s = self
            .ctx()
            .tf(&format!("violation.penalty.{}", p.kind), "days", &days);
        if p.delist_all {
            s.push_str(" · ");
            s.push_str(&self.ctx().t("violation.delist_all"));
        }
        s
    }
    fn penalty_state(&self, p: &Penalty) -> String {
        self.ctx()
            .t(&format!("penalty.status.{}", p.status))
            .into_owned()
    }
    fn node_name(&self, n: &Node) -> String {
        let mut s = self.ctx().tf(
            &format!("violation.penalty.{}", n.action.as_str()),
            "days",
            &n.days.to_string(),
        );
        if n.delist_all {
            s.push_str(" · ");
            s.push_str(&self.ctx().t("violation.delist_all"));
        }
        s
    }
    fn when(&self, t: &Option<chrono::NaiveDateTime>) -> String {
        t.as_ref()
            .map(|t| self.ctx().time(t))
            .unwrap_or_else(|| self.ctx().t("penalty.no_end").into_owned())
    }
}

macro_rules! gov_text {
    ($($t:ty),*) => {$(
        impl GovText for $t {
            fn ctx(&self) -> &PageCtx {
                &self.ctx
            }
        }
    )*};
}

gov_text!(
    MerchantPage,
    MerchantOne,
    AdminList,
    RecordPage,
    QueuePage,
    AppealPage,
    ShopRecordPage,
    RulesPage
);

// ---------- merchant ----------

#[derive(Template)]
#[template(path = "governance/merchant.html")]
struct MerchantPage {
    ctx: PageCtx,
    shop_status: String,
    until: Option<chrono::NaiveDateTime>,
    standing: Vec<TrackStanding>,
    year: i64,
    list: Paginated<ViolationRow>,
    now: chrono::NaiveDateTime,
}

impl MerchantPage {
    fn status_text(&self) -> String {
        self.ctx
            .t(&format!("shop.status.{}", self.shop_status))
            .into_owned()
    }
    fn status_means(&self) -> String {
        self.ctx
            .t(&format!("violation.status_means.{}", self.shop_status))
            .into_owned()
    }
    fn limited(&self) -> bool {
        self.shop_status == "restricted" || self.shop_status == "suspended"
    }
    fn page_link(&self, n: i64) -> String {
        format!("/merchant/violations?page={n}")
    }
}

#[get("/merchant/violations")]
async fn merchant_violations(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    q: aw::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let (page, now) = (q.into_inner(), state.clock.now());
    let (m, year, standing, list) = web::db(&state, move |c, st| {
        let m = crate::shops::service::membership(c, me.id)?
            .ok_or(AppError::Forbidden("shop.no_shop"))?;
        let year = super::points::year_of(st.settings.tz, now);
        let standing = violations::standing(c, m.shop.id, year)?;
        let list = violations::list(c, Some(m.shop.id), None, page, PER_PAGE)?;
        Ok((m, year, standing, list))
    })
    .await?;
    let status = m.shop.status_at(now);
    web::render(&MerchantPage {
        ctx,
        shop_status: status.as_str().to_string(),
        until: m.shop.restricted_until,
        standing,
        year,
        list,
        now,
    })
}

#[derive(Template)]
#[template(path = "governance/merchant_one.html")]
struct MerchantOne {
    ctx: PageCtx,
    r: ViolationRow,
    body: String,
    errors: FieldErrors,
    can_appeal: bool,
}

async fn render_one(
    state: &State,
    ctx: PageCtx,
    viewer: &Viewer,
    id: i64,
    body: String,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let now = state.clock.now();
    let (r, is_owner) = web::db(state, move |c, _| {
        let m = crate::shops::service::membership(c, me.id)?
            .ok_or(AppError::Forbidden("shop.no_shop"))?;
        let r = violations::get(c, id)?;
        if r.v.shop_id != m.shop.id {
            return Err(AppError::NotFound);
        }
        Ok((r, m.role == crate::shops::model::ShopRole::Owner))
    })
    .await?;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let can_appeal = is_owner && r.v.appealable(&now);
    web::render_status(
        status,
        &MerchantOne {
            ctx,
            r,
            body,
            errors,
            can_appeal,
        },
    )
}

#[get("/merchant/violations/{id}")]
async fn merchant_violation(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    path: aw::Path<i64>,
) -> Result<HttpResponse, AppError> {
    render_one(
        &state,
        ctx,
        &viewer,
        path.into_inner(),
        String::new(),
        FieldErrors::new(),
    )
    .await
}

#[post("/merchant/violations/{id}/appeal")]
async fn appeal_submit(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    path: aw::Path<i64>,
    form: CsrfMultipart,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let id = path.into_inner();
    let mut errors = FieldErrors::new();
    let photos = crate::accounts::routes::photos_of(&form, &mut errors);
    let body = form.field("body").unwrap_or_default().to_string();
    let result = if errors.is_empty() {
        let (b, now) = (body.clone(), state.clock.now());
        web::db(&state, move |c, _| {
            appeals::submit(c, &me, id, &b, &photos, now)
        })
        .await
        .map(|_| ())
    } else {
        Err(AppError::Invalid(errors))
    };
    match result {
        Ok(()) => Ok(web::redirect_flash(
            &format!("/merchant/violations/{id}"),
            FlashLevel::Success,
            "appeal.submitted",
        )),
        Err(AppError::Invalid(errors)) => render_one(&state, ctx, &viewer, id, body, errors).await,
        Err(e) => Err(e),
    }
}

/// An evidence file of a violation or its appeal: moderators and the shop's members only.
#[get("/violations/{id}/evidence/{media}")]
async fn evidence(
    state: State,
    viewer: Viewer,
    path: aw::Path<(i64, i64)>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let (id, media) = path.into_inner();
    let file = web::db(&state, move |c, _| {
        if !appeals::evidence_visible(c, &me, id, media)? {
            return Err(AppError::NotFound);
        }
        crate::accounts::service::get_media(c, media)
    })
    .await?;
    Ok(web::media_response(file))
}

// ---------- moderators: violations ----------

#[derive(Template)]
#[template(path = "governance/admin_list.html")]
struct AdminList {
    ctx: PageCtx,
    status: String,
    list: Paginated<ViolationRow>,
}

impl AdminList {
    fn is_status(&self, s: &str) -> bool {
        self.status == s
    }
    fn page_link(&self, n: i64) -> String {
        format!("/admin/violations?status={}&page={n}", self.status)
    }
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    page: Option<i64>,
}

#[get("/admin/violations")]
async fn admin_violations(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    q: aw::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    viewer.require_role(Role::Moderator)?;
    let status = q
        .status
        .clone()
        .filter(|s| ["active", "appealed", "upheld", "revoked"].contains(&s.as_str()))
        .unwrap_or_default();
    let page = PageQuery { page: q.page };
    let st = status.clone();
    let list = web::db(&state, move |c, _| {
        violations::list(
            c,
            None,
            (!st.is_empty()).then_some(st.as_str()),
            page,
            PER_PAGE,
        )
    })
    .await?;
    web::render(&AdminList { ctx, status, list })
}

#[derive(Template)]
#[template(path = "governance/record.html")]
struct RecordPage {
    ctx: PageCtx,
    types: Vec<ViolationType>,
    form: RecordForm,
    errors: FieldErrors,
}

impl RecordPage {
    fn err(&self, field: &str) -> Option<String> {
        self.ctx.field_error(&self.errors, field)
    }
    fn chosen(&self, t: &ViolationType) -> bool {
        self.form.type_id == t.id.to_string()
    }
}

async fn render_record(
    state: &State,
    ctx: PageCtx,
    form: RecordForm,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    let types = web::db(state, |c, _| violations::active_types(c)).await?;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    web::render_status(
        status,
        &RecordPage {
            ctx,
            types,
            form,
            errors,
        },
    )
}

#[derive(Deserialize)]
struct RecordQuery {
    shop: Option<String>,
    product: Option<i64>,
}

#[get("/admin/violations/new")]
async fn record_page(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    q: aw::Query<RecordQuery>,
) -> Result<HttpResponse, AppError> {
    viewer.require_role(Role::Moderator)?;
    let form = RecordForm {
        shop: q.shop.clone().unwrap_or_default(),
        product_id: q.product.map(|p| p.to_string()).unwrap_or_default(),
        ..RecordForm::default()
    };
    render_record(&state, ctx, form, FieldErrors::new()).await
}

#[post("/admin/violations")]
async fn record_submit(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    form: CsrfMultipart,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_role(Role::Moderator)?.clone();
    let mut errors = FieldErrors::new();
    let photos = crate::accounts::routes::photos_of(&form, &mut errors);
    let field = |n: &str| form.field(n).unwrap_or_default().to_string();
    let record = RecordForm {
        shop: field("shop"),
        type_id: field("type_id"),
        product_id: field("product_id"),
        order_no: field("order_no"),
        description: field("description"),
    };
    let result = if errors.is_empty() {
        let (f, now) = (record.clone(), state.clock.now());
        web::db(&state, move |c, st| {
            violations::record(c, &me, &f, &photos, st.settings.tz, now)
        })
        .await
    } else {
        Err(AppError::Invalid(errors))
    };
    match result {
        Ok(r) => Ok(web::redirect_flash(
            &format!("/admin/violations?recorded={}", r.violation_id),
            FlashLevel::Success,
            if r.penalty.is_some() {
                "violation.recorded_penalty"
            } else {
                "violation.recorded"
            },
        )),
        Err(AppError::Invalid(errors)) => render_record(&state, ctx, record, errors).await,
        Err(e) => Err(e),
    }
}

// ---------- moderators: appeals ----------

#[derive(Template)]
#[template(path = "governance/queue.html")]
struct QueuePage {
    ctx: PageCtx,
    decided: bool,
    list: Paginated<QueueRow>,
    now: chrono::NaiveDateTime,
}

impl QueuePage {
    fn page_link(&self, n: i64) -> String {
        format!("/admin/appeals?decided={}&page={n}", u8::from(self.decided))
    }
}

#[derive(Deserialize)]
struct QueueQuery {
    decided: Option<u8>,
    page: Option<i64>,
}

#[get("/admin/appeals")]
async fn admin_appeals(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    q: aw::Query<QueueQuery>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_role(Role::Moderator)?.clone();
    let decided = q.decided == Some(1);
    let page = PageQuery { page: q.page };
    let list = web::db(&state, move |c, _| {
        appeals::queue(c, &me, !decided, page, PER_PAGE)
    })
    .await?;
    web::render(&QueuePage {
        ctx,
        decided,
        list,
        now: state.clock.now(),
    })
}

#[derive(Template)]
#[template(path = "governance/appeal.html")]
struct AppealPage {
    ctx: PageCtx,
    row: QueueRow,
    history: Paginated<ViolationRow>,
    penalties: Vec<Penalty>,
    errors: FieldErrors,
}

async fn render_appeal(
    state: &State,
    ctx: PageCtx,
    viewer: &Viewer,
    id: i64,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    viewer.require_role(Role::Moderator)?;
    let (row, history, penalties) = web::db(state, move |c, _| {
        let appeal = appeals::get(c, id)?;
        let violation = violations::get(c, appeal.violation_id)?;
        let shop = violation.v.shop_id;
        let history = violations::list(c, Some(shop), None, PageQuery { page: None }, 50)?;
        let penalties = violations::shop_penalties(c, shop, 50)?;
        Ok((QueueRow { appeal, violation }, history, penalties))
    })
    .await?;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    web::render_status(
        status,
        &AppealPage {
            ctx,
            row,
            history,
            penalties,
            errors,
        },
    )
}

#[get("/admin/appeals/{id}")]
async fn admin_appeal(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    path: aw::Path<i64>,
) -> Result<HttpResponse, AppError> {
    render_appeal(&state, ctx, &viewer, path.into_inner(), FieldErrors::new()).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DecideForm {
    verdict: String,
    reason: String,
}

#[post("/admin/appeals/{id}/decide")]
async fn appeal_decide(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    path: aw::Path<i64>,
    CsrfForm(form): CsrfForm<DecideForm>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_role(Role::Moderator)?.clone();
    let id = path.into_inner();
    let Some(verdict) = Verdict::parse(&form.verdict) else {
        return Err(AppError::BadRequest("error.400.body"));
    };
    let now = state.clock.now();
    match web::db(&state, move |c, st| {
        appeals::decide(c, &me, id, verdict, &form.reason, st.settings.tz, now)
    })
    .await
    {
        Ok(_) => Ok(web::redirect_flash(
            "/admin/appeals",
            FlashLevel::Success,
            if verdict == Verdict::Revoke {
                "appeal.revoked"
            } else {
                "appeal.upheld"
            },
        )),
        Err(AppError::Invalid(errors)) => render_appeal(&state, ctx, &viewer, id, errors).await,
        Err(e) => Err(e),
    }
}

// ---------- suspension by hand ----------

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ReasonForm {
    reason: String,
}

async fn shop_action(
    state: State,
    viewer: Viewer,
    id: i64,
    reason: String,
    suspend: bool,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_role(Role::Moderator)?.clone();
    let now = state.clock.now();
    let back = &format!("/admin/shops/{id}");
    match web::db(&state, move |c, _| {
        if suspend {
            violations::suspend(c, &me, id, &reason, now)
        } else {
            violations::reinstate(c, &me, id, &reason, now)
        }
    })
    .await
    {
        Ok(()) => Ok(web::redirect_flash(
            back,
            FlashLevel::Success,
            if suspend {
                "governance.suspended"
            } else {
                "governance.reinstated"
            },
        )),
        Err(AppError::Invalid(_)) => Ok(web::redirect_flash(
            back,
            FlashLevel::Error,
            "governance.reason_needed",
        )),
        Err(e) => Err(e),
    }
}

#[post("/admin/shops/{id}/suspend")]
async fn shop_suspend(
    state: State,
    viewer: Viewer,
    path: aw::Path<i64>,
    CsrfForm(form): CsrfForm<ReasonForm>,
) -> Result<HttpResponse, AppError> {
    shop_action(state, viewer, path.into_inner(), form.reason, true).await
}

#[post("/admin/shops/{id}/reinstate")]
async fn shop_reinstate(
    state: State,
    viewer: Viewer,
    path: aw::Path<i64>,
    CsrfForm(form): CsrfForm<ReasonForm>,
) -> Result<HttpResponse, AppError> {
    shop_action(state, viewer, path.into_inner(), form.reason, false).await
}

// ---------- the audit log ----------

#[derive(Template)]
#[template(path = "governance/audit.html")]
struct AuditPage {
    ctx: PageCtx,
    f: AuditFilter,
    list: Paginated<AuditRow>,
}

impl AuditPage {
    fn page_link(&self, n: i64) -> String {
        format!("/admin/audit?{}&page={n}", self.f.query())
    }
    fn csv_link(&self) -> String {
        format!("/admin/audit.csv?{}", self.f.query())
    }
}

#[get("/admin/audit")]
async fn audit_page(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    q: aw::Query<AuditFilter>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_role(Role::Moderator)?.clone();
    let f = q.into_inner();
    let (ff, page) = (f.clone(), PageQuery { page: f.page });
    let list = web::db(&state, move |c, st| {
        audit::list(c, &me, &ff, st.settings.tz, page)
    })
    .await?;
    web::render(&AuditPage { ctx, f, list })
}

/// Audit entries per database round trip of the export.
const CSV_CHUNK: i64 = 1000;

/// The filtered log as CSV, streamed chunk by chunk.
#[get("/admin/audit.csv")]
async fn audit_csv(
    state: State,
    viewer: Viewer,
    q: aw::Query<AuditFilter>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_role(Role::Moderator)?.clone();
    let f = q.into_inner();
    let tz = state.settings.tz;
    let name = format!("audit-{}.csv", state.clock.now().format("%Y%m%d-%H%M%S"));
    let header = audit::csv_header().as_bytes().to_vec();
    Ok(web::csv_stream(state, &name, header, move |c, before| {
        audit::csv_chunk(c, &me, &f, tz, before, CSV_CHUNK)
            .map(|(text, next)| (text.into_bytes(), next))
    }))
}

// ---------- one shop's record ----------

#[derive(Template)]
#[template(path = "governance/shop.html")]
struct ShopRecordPage {
    ctx: PageCtx,
    r: ShopRecord,
    is_admin: bool,
    status: String,
}

impl ShopRecordPage {
    fn page_link(&self, n: i64) -> String {
        format!("/admin/shops/{}?page={n}", self.r.shop.id)
    }
    fn status_text(&self) -> String {
        self.ctx
            .t(&format!("shop.status.{}", self.status))
            .into_owned()
    }
    fn tier_text(&self, tier: &str) -> String {
        self.ctx.t(&format!("dsr.tier.{tier}")).into_owned()
    }
    fn score_text(&self) -> String {
        self.r
            .score
            .as_ref()
            .and_then(|s| s.score)
            .map(|s| format!("{s:.2}"))
            .unwrap_or_else(|| "—".into())
    }
}

#[get("/admin/shops/{id}")]
async fn shop_record(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    path: aw::Path<i64>,
    q: aw::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_role(Role::Moderator)?.clone();
    let is_admin = me.has_role(Role::Admin);
    let (id, now, page) = (path.into_inner(), state.clock.now(), q.into_inner());
    let r = web::db(&state, move |c, st| {
        violations::shop_record(c, &me, id, st.settings.tz, now, page)
    })
    .await?;
    let status = r.shop.status_at(now).as_str().to_string();
    web::render(&ShopRecordPage {
        ctx,
        r,
        is_admin,
        status,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ClearForm {
    reason: String,
    confirm: String,
}

/// Admins only: clears a shop by hand (permanent). The form asks to type the shop's address.
#[post("/admin/shops/{id}/clear")]
async fn shop_clear(
    state: State,
    viewer: Viewer,
    path: aw::Path<i64>,
    CsrfForm(form): CsrfForm<ClearForm>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_role(Role::Admin)?.clone();
    let (id, now) = (path.into_inner(), state.clock.now());
    let back = format!("/admin/shops/{id}");
    let r = web::db(&state, move |c, _| {
        let slug: String = {
            use crate::db::schema::shops;
            use diesel::prelude::*;
            shops::table
                .find(id)
                .select(shops::slug)
                .first(c)
                .optional()?
                .ok_or(AppError::NotFound)?
        };
        if form.confirm.trim() != slug {
            return Err(AppError::field("confirm", "clear_confirm"));
        }
        violations::clear_by_hand(c, &me, id, &form.reason, now)
    })
    .await;
    match r {
        Ok(()) => Ok(web::redirect_flash(
            &back,
            FlashLevel::Success,
            "governance.cleared",
        )),
        Err(AppError::Invalid(e)) => Ok(web::redirect_flash(
            &back,
            FlashLevel::Error,
            if e.first("confirm").is_some() {
                "governance.clear_confirm"
            } else {
                "governance.reason_needed"
            },
        )),
        Err(e) => Err(e),
    }
}

// ---------- the rules editor (admins) ----------

#[derive(Template)]
#[template(path = "governance/rules.html")]
struct RulesPage {
    ctx: PageCtx,
    terms: Vec<editor::TermRow>,
    params: Vec<(&'static str, i64)>,
    types: Vec<ViolationType>,
    nodes: Vec<(i64, Node)>,
    score_json: String,
    categories: Vec<crate::shops::model::Category>,
    versions: Vec<editor::Version>,
    test: TestQuery,
    hits: Option<Vec<super::rules::Hit>>,
    term: editor::TermForm,
    errors: FieldErrors,
    /// Which form the errors belong to.
    section: &'static str,
}

impl RulesPage {
    fn err(&self, section: &str, field: &str) -> Option<String> {
        (self.section == section)
            .then(|| self.ctx.field_error(&self.errors, field))
            .flatten()
    }
    fn cat_name<'a>(&self, c: &'a crate::shops::model::Category) -> &'a str {
        c.name(self.ctx.locale)
    }
    fn test_category(&self, id: &i64) -> bool {
        self.test.category == Some(*id)
    }
    fn term_category(&self, slug: &str) -> bool {
        self.term.category == slug
    }
    fn hit_text(&self, h: &super::rules::Hit) -> String {
        self.ctx.t(&h.message).into_owned()
    }
    fn param_label(&self, key: &str) -> String {
        self.ctx.t(&format!("rules.param.{key}")).into_owned()
    }
    fn action_name(&self, a: &str) -> String {
        self.ctx.t(&format!("rules.action.{a}")).into_owned()
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
struct TestQuery {
    text: String,
    category: Option<i64>,
}

#[allow(clippy::too_many_arguments)]
async fn render_rules(
    state: &State,
    ctx: PageCtx,
    viewer: &Viewer,
    test: TestQuery,
    term: editor::TermForm,
    score: Option<String>,
    errors: FieldErrors,
    section: &'static str,
) -> Result<HttpResponse, AppError> {
    viewer.require_role(Role::Admin)?;
    let t = test.clone();
    let (terms, params, types, nodes, json, categories, versions, hits) =
        web::db(state, move |c, _| {
            let mut params = Vec::new();
            for (k, _, _) in editor::PARAMS {
                let d = if k == "price_ceiling_fen" {
                    100_000_000
                } else {
                    0
                };
                params.push((k, violations::param(c, k, d)?));
            }
            let (_, score) = crate::dsr::rules::current(c)?;
            let json = serde_json::to_string_pretty(&score).map_err(AppError::internal)?;
            let hits = if t.text.trim().is_empty() {
                None
            } else {
                let text: String = t.text.chars().take(2000).collect();
                Some(editor::test_text(c, &text, t.category)?)
            };
            Ok((
                editor::terms(c)?,
                params,
                violations::active_types(c)?,
                editor::node_rows(c)?,
                json,
                crate::shops::service::categories(c)?,
                editor::versions(c, 10)?,
                hits,
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
        &RulesPage {
            ctx,
            terms,
            params,
            types,
            nodes,
            score_json: score.unwrap_or(json),
            categories,
            versions,
            test,
            hits,
            term,
            errors,
            section,
        },
    )
}

#[get("/admin/rules")]
async fn rules_page(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    q: aw::Query<TestQuery>,
) -> Result<HttpResponse, AppError> {
    let term = editor::TermForm {
        match_type: "substring".into(),
        scope: "all".into(),
        severity: "block".into(),
        ..Default::default()
    };
    render_rules(
        &state,
        ctx,
        &viewer,
        q.into_inner(),
        term,
        None,
        FieldErrors::new(),
        "",
    )
    .await
}

/// Runs one editor change; success goes back to the editor with a message, field errors
/// re-render it with the form kept.
async fn rules_change<F>(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    section: &'static str,
    term: editor::TermForm,
    score: Option<String>,
    f: F,
) -> Result<HttpResponse, AppError>
where
    F: FnOnce(
            &mut crate::db::DbConn,
            &crate::accounts::SessionUser,
            chrono::NaiveDateTime,
        ) -> Result<i64, AppError>
        + Send
        + 'static,
{
    let me = viewer.require_role(Role::Admin)?.clone();
    let now = state.clock.now();
    match web::db(&state, move |c, _| f(c, &me, now)).await {
        Ok(_) => Ok(web::redirect_flash(
            &format!("/admin/rules#{section}"),
            FlashLevel::Success,
            "rules.saved",
        )),
        Err(AppError::Invalid(errors)) => {
            render_rules(
                &state,
                ctx,
                &viewer,
                TestQuery::default(),
                term,
                score,
                errors,
                section,
            )
            .await
        }
        Err(e) => Err(e),
    }
}

#[post("/admin/rules/terms")]
async fn rules_term_add(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    CsrfForm(form): CsrfForm<editor::TermForm>,
) -> Result<HttpResponse, AppError> {
    let f = form.clone();
    rules_change(
        state,
        ctx,
        viewer,
        "terms",
        form,
        None,
        move |c, me, now| editor::add_term(c, me, &f, now),
    )
    .await
}

#[post("/admin/rules/terms/{id}/delete")]
async fn rules_term_delete(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    path: aw::Path<i64>,
    _form: CsrfForm<ReasonForm>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    rules_change(
        state,
        ctx,
        viewer,
        "terms",
        Default::default(),
        None,
        move |c, me, now| editor::delete_term(c, me, id, now),
    )
    .await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ParamForm {
    key: String,
    value: String,
}

#[post("/admin/rules/params")]
async fn rules_param(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    CsrfForm(form): CsrfForm<ParamForm>,
) -> Result<HttpResponse, AppError> {
    rules_change(
        state,
        ctx,
        viewer,
        "params",
        Default::default(),
        None,
        move |c, me, now| editor::set_param(c, me, &form.key, &form.value, now),
    )
    .await
}

#[post("/admin/rules/types")]
async fn rules_type_save(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    CsrfForm(form): CsrfForm<editor::TypeForm>,
) -> Result<HttpResponse, AppError> {
    rules_change(
        state,
        ctx,
        viewer,
        "types",
        Default::default(),
        None,
        move |c, me, now| editor::save_type(c, me, &form, now),
    )
    .await
}

#[post("/admin/rules/types/{code}/retire")]
async fn rules_type_retire(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    path: aw::Path<String>,
    _form: CsrfForm<ReasonForm>,
) -> Result<HttpResponse, AppError> {
    let code = path.into_inner();
    rules_change(
        state,
        ctx,
        viewer,
        "types",
        Default::default(),
        None,
        move |c, me, now| editor::retire_type(c, me, &code, now),
    )
    .await
}

#[post("/admin/rules/nodes")]
async fn rules_node_save(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    CsrfForm(form): CsrfForm<editor::NodeForm>,
) -> Result<HttpResponse, AppError> {
    rules_change(
        state,
        ctx,
        viewer,
        "nodes",
        Default::default(),
        None,
        move |c, me, now| editor::save_node(c, me, &form, now),
    )
    .await
}

#[post("/admin/rules/nodes/{id}/delete")]
async fn rules_node_delete(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    path: aw::Path<i64>,
    _form: CsrfForm<ReasonForm>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    rules_change(
        state,
        ctx,
        viewer,
        "nodes",
        Default::default(),
        None,
        move |c, me, now| editor::delete_node(c, me, id, now),
    )
    .await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ScoreForm {
    score: String,
}

#[post("/admin/rules/score")]
async fn rules_score(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    CsrfForm(form): CsrfForm<ScoreForm>,
) -> Result<HttpResponse, AppError> {
    let kept = Some(form.score.clone());
    rules_change(
        state,
        ctx,
        viewer,
        "score",
        Default::default(),
        kept,
        move |c, me, now| editor::save_score_rules(c, me, &form.score, now),
    )
    .await
}

#[derive(Template)]
#[template(path = "governance/versions.html")]
struct VersionsPage {
    ctx: PageCtx,
    versions: Vec<editor::Version>,
    one: bool,
}

#[get("/admin/rules/versions")]
async fn rules_versions(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
) -> Result<HttpResponse, AppError> {
    viewer.require_role(Role::Admin)?;
    let versions = web::db(&state, |c, _| editor::versions(c, 200)).await?;
    web::render(&VersionsPage {
        ctx,
        versions,
        one: false,
    })
}

#[get("/admin/rules/versions/{id}")]
async fn rules_version(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    path: aw::Path<i64>,
) -> Result<HttpResponse, AppError> {
    viewer.require_role(Role::Admin)?;
    let id = path.into_inner();
    let v = web::db(&state, move |c, _| editor::version(c, id)).await?;
    web::render(&VersionsPage {
        ctx,
        versions: vec![v],
        one: true,
    })
}
