//! Catalog pages: the merchant's products (list, create, edit, variants, SKU grid, submit,
//! bulk delist/relist), the public product page and the moderators' review and product lists.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{get, post, web as aw, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::model::{Product, Sku};
use super::search;
use super::service::{self, Decision, Editable, ModerationRow, ProductForm, ProductRow, SkuInput};
use crate::accounts::{Role, Viewer};
use crate::error::{AppError, FieldErrors};
use crate::governance::rules::{Hit, Outcome};
use crate::shops::model::Category;
use crate::shops::service::Membership;
use crate::web::{self, CsrfForm, FlashLevel, PageCtx, PageQuery, Paginated, State};

/// The buyer pages, registered before every other route (actix tries routes in order, and
/// these are the busiest).
pub fn public(cfg: &mut aw::ServiceConfig) {
    cfg.service(product_page).service(search_page);
}

pub fn routes(cfg: &mut aw::ServiceConfig) {
    cfg.service(list_page)
        .service(new_page)
        .service(new_submit)
        .service(bulk)
        .service(csv_export)
        .service(csv_import)
        .service(edit_page)
        .service(edit_submit)
        .service(variants_submit)
        .service(images_add)
        .service(stock_adjust)
        .service(image_change)
        .service(skus_submit)
        .service(submit_listing)
        .service(review_queue)
        .service(admin_products)
        .service(moderate_product);
}

pub const STATUSES: [&str; 6] = [
    "draft",
    "pending_review",
    "listed",
    "needs_changes",
    "rejected",
    "delisted",
];

/// Shared template helpers.
pub trait CatalogText {
    fn ctx(&self) -> &PageCtx;
    fn status_name(&self, s: &str) -> String {
        self.ctx().t(&format!("product.status.{s}")).into_owned()
    }
    fn hit_text(&self, h: &Hit) -> String {
        let what = self.ctx().t(&h.message);
        if h.matched.is_empty() {
            what.into_owned()
        } else {
            format!("{what}「{}」", h.matched)
        }
    }
    fn field_name(&self, f: &str) -> String {
        self.ctx().t(&format!("product.field.{f}")).into_owned()
    }
}

fn outcome_flash(o: Outcome) -> (FlashLevel, &'static str) {
    match o {
        Outcome::Pass => (FlashLevel::Success, "product.outcome.listed"),
        Outcome::ManualReview => (FlashLevel::Info, "product.outcome.review"),
        Outcome::NeedsChanges => (FlashLevel::Error, "product.outcome.needs_changes"),
    }
}

// ---------- merchant list ----------

#[derive(Template)]
#[template(path = "catalog/list.html")]
struct ListPage {
    ctx: PageCtx,
    m: Membership,
    list: Paginated<ProductRow>,
    status: String,
    q: String,
    statuses: [&'static str; 6],
}

impl CatalogText for ListPage {
    fn ctx(&self) -> &PageCtx {
        &self.ctx
    }
}

impl ListPage {
    fn page_link(&self, n: i64) -> String {
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        format!(
            "/merchant/products?status={}&q={}&page={n}",
            enc(&self.status),
            enc(&self.q)
        )
    }
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    q: Option<String>,
    page: Option<i64>,
}

#[get("/merchant/products")]
async fn list_page(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    q: aw::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let status = q
        .status
        .clone()
        .filter(|s| STATUSES.contains(&s.as_str()))
        .unwrap_or_default();
    let query: String = q.q.clone().unwrap_or_default().chars().take(100).collect();
    let page = PageQuery { page: q.page };
    let (s, qq) = (status.clone(), query.clone());
    let (m, list) = web::db(&state, move |c, _| service::list_own(c, &me, &s, &qq, page)).await?;
    web::render(&ListPage {
        ctx,
        m,
        list,
        status,
        q: query,
        statuses: STATUSES,
    })
}

#[get("/merchant/products/skus.csv")]
async fn csv_export(state: State, viewer: Viewer) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let body = web::db(&state, move |c, _| service::export_skus_csv(c, &me)).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(("Content-Disposition", "attachment; filename=\"skus.csv\""))
        .insert_header(("Cache-Control", "no-store"))
        .body(body))
}

#[derive(Template)]
#[template(path = "catalog/import_errors.html")]
pub struct ImportErrors {
    pub ctx: PageCtx,
    pub errors: Vec<service::CsvError>,
    /// Where the page leads back to, and that page's title key.
    pub back: &'static str,
    pub back_label: &'static str,
}

#[post("/merchant/products/skus.csv")]
async fn csv_import(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    mp: crate::web::CsrfMultipart,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let Some(file) = mp.file("file").map(|f| f.bytes.clone()) else {
        return Ok(web::redirect_flash(
            "/merchant/products",
            FlashLevel::Error,
            "csv.no_file",
        ));
    };
    let now = state.clock.now();
    match web::db(&state, move |c, _| {
        service::import_skus_csv(c, &me, &file, now)
    })
    .await?
    {
        Ok(_) => Ok(web::redirect_flash(
            "/merchant/products",
            FlashLevel::Success,
            "csv.imported",
        )),
        Err(errors) => web::render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &ImportErrors {
                ctx,
                errors,
                back: "/merchant/products",
                back_label: "product.list_title",
            },
        ),
    }
}

#[post("/merchant/products/bulk")]
async fn bulk(
    state: State,
    viewer: Viewer,
    CsrfForm(form): CsrfForm<HashMap<String, String>>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let ids: Vec<i64> = form
        .keys()
        .filter_map(|k| k.strip_prefix("id_"))
        .filter_map(|v| v.parse().ok())
        .collect();
    if ids.is_empty() {
        return Ok(web::redirect_flash(
            "/merchant/products",
            FlashLevel::Info,
            "product.bulk_none",
        ));
    }
    let now = state.clock.now();
    match form.get("action").map(String::as_str) {
        Some("delist") => {
            web::db(&state, move |c, _| service::delist_own(c, &me, &ids, now)).await?;
            Ok(web::redirect_flash(
                "/merchant/products",
                FlashLevel::Success,
                "product.bulk_delisted",
            ))
        }
        Some("relist") => {
            web::db(&state, move |c, _| service::relist_own(c, &me, &ids, now)).await?;
            Ok(web::redirect_flash(
                "/merchant/products",
                FlashLevel::Success,
                "product.bulk_relisted",
            ))
        }
        _ => Err(AppError::BadRequest("error.bad_form")),
    }
}

// ---------- create and edit ----------

#[derive(Template)]
#[template(path = "catalog/edit.html")]
struct EditPage {
    ctx: PageCtx,
    /// None while creating.
    e: Option<Editable>,
    form: ProductForm,
    variants: String,
    sku_inputs: Vec<(Sku, SkuInput)>,
    categories: Vec<Category>,
    errors: FieldErrors,
}

impl CatalogText for EditPage {
    fn ctx(&self) -> &PageCtx {
        &self.ctx
    }
}

impl EditPage {
    fn err(&self, field: &str) -> Option<String> {
        self.ctx.field_error(&self.errors, field)
    }
    fn sku_err(&self, id: &i64, what: &str) -> Option<String> {
        self.err(&format!("sku_{id}_{what}"))
    }
    fn category_label(&self, c: &Category) -> String {
        let name = c.name(self.ctx.locale);
        match c
            .parent_id
            .and_then(|p| self.categories.iter().find(|x| x.id == p))
        {
            Some(parent) => format!("{} › {name}", parent.name(self.ctx.locale)),
            None => name.to_string(),
        }
    }
    /// The newest check's hits on one field.
    fn hits_on(&self, field: &str) -> Vec<String> {
        self.e
            .as_ref()
            .map(|e| {
                e.hits
                    .iter()
                    .filter(|h| h.field == field)
                    .map(|h| self.hit_text(h))
                    .collect()
            })
            .unwrap_or_default()
    }
    fn selected(&self, c: &Category) -> bool {
        self.form.category_id == c.id.to_string()
    }
}

fn form_of(p: &Product) -> ProductForm {
    ProductForm {
        title: p.title.clone(),
        subtitle: p.subtitle.clone(),
        description: p.description.clone(),
        attributes: p.attributes.clone(),
        category_id: p.category_id.to_string(),
    }
}

fn inputs_of(skus: &[Sku]) -> Vec<(Sku, SkuInput)> {
    skus.iter()
        .map(|s| {
            let input = SkuInput {
                id: s.id,
                code: s.code.clone(),
                price: if s.price_fen > 0 {
                    s.price_input()
                } else {
                    String::new()
                },
                list_price: s.list_price_input(),
                stock: s.stock.to_string(),
            };
            (s.clone(), input)
        })
        .collect()
}

/// What the merchant typed, shown again when a form comes back with errors.
#[derive(Default)]
struct Typed {
    form: Option<ProductForm>,
    variants: Option<String>,
    skus: Option<Vec<SkuInput>>,
}

async fn edit_render(
    state: &State,
    ctx: PageCtx,
    viewer: &Viewer,
    id: Option<i64>,
    typed: Typed,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    let Typed {
        form,
        variants,
        skus: sku_inputs,
    } = typed;
    let me = viewer.require_user()?.clone();
    let (e, categories) = web::db(state, move |c, _| {
        let e = match id {
            Some(id) => Some(service::editable(c, &me, id)?),
            None => {
                crate::shops::service::require_shop_role(c, &me, crate::shops::ShopRole::Operator)?;
                None
            }
        };
        Ok((e, crate::shops::service::categories(c)?))
    })
    .await?;
    let form = form.unwrap_or_else(|| e.as_ref().map(|e| form_of(&e.product)).unwrap_or_default());
    let variants = variants.unwrap_or_else(|| {
        e.as_ref()
            .map(|e| e.product.variant_spec.clone())
            .unwrap_or_default()
    });
    let mut rows = e.as_ref().map(|e| inputs_of(&e.skus)).unwrap_or_default();
    if let Some(typed) = sku_inputs {
        for (_, input) in rows.iter_mut() {
            if let Some(t) = typed.iter().find(|t| t.id == input.id) {
                *input = t.clone();
            }
        }
    }
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    web::render_status(
        status,
        &EditPage {
            ctx,
            e,
            form,
            variants,
            sku_inputs: rows,
            categories,
            errors,
        },
    )
}

#[get("/merchant/products/new")]
async fn new_page(state: State, ctx: PageCtx, viewer: Viewer) -> Result<HttpResponse, AppError> {
    edit_render(
        &state,
        ctx,
        &viewer,
        None,
        Typed::default(),
        FieldErrors::new(),
    )
    .await
}

#[post("/merchant/products/new")]
async fn new_submit(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    CsrfForm(form): CsrfForm<ProductForm>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let (f, now) = (form.clone(), state.clock.now());
    match web::db(&state, move |c, _| service::create_product(c, &me, &f, now)).await {
        Ok(id) => Ok(web::redirect_flash(
            &format!("/merchant/products/{id}"),
            FlashLevel::Success,
            "product.created",
        )),
        Err(AppError::Invalid(errors)) => {
            let typed = Typed {
                form: Some(form),
                ..Typed::default()
            };
            edit_render(&state, ctx, &viewer, None, typed, errors).await
        }
        Err(e) => Err(e),
    }
}

#[get("/merchant/products/{id}")]
async fn edit_page(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    path: aw::Path<i64>,
) -> Result<HttpResponse, AppError> {
    edit_render(
        &state,
        ctx,
        &viewer,
        Some(path.into_inner()),
        Typed::default(),
        FieldErrors::new(),
    )
    .await
}

fn after_save(id: i64, outcome: Option<Outcome>) -> HttpResponse {
    let to = format!("/merchant/products/{id}");
    match outcome {
        Some(o) => {
            let (level, key) = outcome_flash(o);
            web::redirect_flash(&to, level, key)
        }
        None => web::redirect_flash(&to, FlashLevel::Success, "product.saved"),
    }
}

#[post("/merchant/products/{id}")]
async fn edit_submit(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    path: aw::Path<i64>,
    CsrfForm(form): CsrfForm<ProductForm>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let (id, f, now) = (path.into_inner(), form.clone(), state.clock.now());
    match web::db(&state, move |c, _| {
        service::update_product(c, &me, id, &f, now)
    })
    .await
    {
        Ok(outcome) => Ok(after_save(id, outcome)),
        Err(AppError::Invalid(errors)) => {
            edit_render(
                &state,
                ctx,
                &viewer,
                Some(id),
                Typed {
                    form: Some(form),
                    ..Typed::default()
                },
                errors,
            )
            .await
        }
        Err(e) => Err(e),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct VariantsForm {
    variants: String,
}

#[post("/merchant/products/{id}/variants")]
async fn variants_submit(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    path: aw::Path<i64>,
    CsrfForm(form): CsrfForm<VariantsForm>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let (id, text, now) = (path.into_inner(), form.variants.clone(), state.clock.now());
    match web::db(&state, move |c, _| {
        service::set_variants(c, &me, id, &text, now)
    })
    .await
    {
        Ok(()) => Ok(web::redirect_flash(
            &format!("/merchant/products/{id}#skus"),
            FlashLevel::Success,
            "product.variants_saved",
        )),
        Err(AppError::Invalid(errors)) => {
            edit_render(
                &state,
                ctx,
                &viewer,
                Some(id),
                Typed {
                    variants: Some(form.variants),
                    ..Typed::default()
                },
                errors,
            )
            .await
        }
        Err(e) => Err(e),
    }
}

#[post("/merchant/products/{id}/skus")]
async fn skus_submit(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    path: aw::Path<i64>,
    CsrfForm(form): CsrfForm<HashMap<String, String>>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let id = path.into_inner();
    let mut rows: Vec<SkuInput> = Vec::new();
    for key in form.keys() {
        if let Some(sku) = key
            .strip_prefix("sku_")
            .and_then(|r| r.strip_suffix("_price"))
            .and_then(|n| n.parse::<i64>().ok())
        {
            let get = |what: &str| {
                form.get(&format!("sku_{sku}_{what}"))
                    .cloned()
                    .unwrap_or_default()
            };
            rows.push(SkuInput {
                id: sku,
                code: get("code"),
                price: get("price"),
                list_price: get("list_price"),
                stock: get("stock"),
            });
        }
    }
    if rows.is_empty() {
        return Err(AppError::BadRequest("error.bad_form"));
    }
    let (r, now) = (rows.clone(), state.clock.now());
    match web::db(&state, move |c, _| service::save_skus(c, &me, id, &r, now)).await {
        Ok(outcome) => Ok(after_save(id, outcome)),
        Err(AppError::Invalid(errors)) => {
            edit_render(
                &state,
                ctx,
                &viewer,
                Some(id),
                Typed {
                    skus: Some(rows),
                    ..Typed::default()
                },
                errors,
            )
            .await
        }
        Err(e) => Err(e),
    }
}

use crate::web::Empty;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StockForm {
    delta: String,
    back: String,
}

/// Adds to or takes from one SKU's stock with a conditional update (never below zero).
#[post("/merchant/skus/{id}/stock")]
async fn stock_adjust(
    state: State,
    viewer: Viewer,
    path: aw::Path<i64>,
    CsrfForm(form): CsrfForm<StockForm>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let back = web::safe_next(Some(&form.back));
    let Some(delta) = form
        .delta
        .trim()
        .trim_start_matches('+')
        .parse::<i64>()
        .ok()
        .filter(|d| *d != 0 && d.abs() <= 10_000_000)
    else {
        return Ok(web::redirect_flash(
            &back,
            FlashLevel::Error,
            "validation.stock_format",
        ));
    };
    let (id, now) = (path.into_inner(), state.clock.now());
    web::db(&state, move |c, _| {
        service::adjust_stock(c, &me, id, delta, now)
    })
    .await?;
    Ok(web::redirect_flash(
        &back,
        FlashLevel::Success,
        "product.stock_adjusted",
    ))
}

#[post("/merchant/products/{id}/images")]
async fn images_add(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    path: aw::Path<i64>,
    mp: crate::web::CsrfMultipart,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let id = path.into_inner();
    let files: Vec<Vec<u8>> = mp
        .files
        .into_iter()
        .filter(|f| f.field == "images" && !f.bytes.is_empty())
        .map(|f| f.bytes)
        .collect();
    let now = state.clock.now();
    match web::db(&state, move |c, _| {
        service::add_images(c, &me, id, &files, now)
    })
    .await
    {
        Ok(()) => Ok(web::redirect_flash(
            &format!("/merchant/products/{id}#images"),
            FlashLevel::Success,
            "product.images_saved",
        )),
        Err(AppError::Invalid(errors)) => {
            edit_render(&state, ctx, &viewer, Some(id), Typed::default(), errors).await
        }
        Err(e) => Err(e),
    }
}

#[post("/merchant/products/{id}/images/{image_id}/{action}")]
async fn image_change(
    state: State,
    viewer: Viewer,
    path: aw::Path<(i64, i64, String)>,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let (id, image_id, action) = path.into_inner();
    let make_cover = match action.as_str() {
        "cover" => true,
        "delete" => false,
        _ => return Err(AppError::NotFound),
    };
    web::db(&state, move |c, _| {
        service::change_image(c, &me, id, image_id, make_cover)
    })
    .await?;
    Ok(web::redirect_flash(
        &format!("/merchant/products/{id}#images"),
        FlashLevel::Success,
        "product.images_saved",
    ))
}

#[post("/merchant/products/{id}/submit")]
async fn submit_listing(
    state: State,
    viewer: Viewer,
    path: aw::Path<i64>,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let (id, now) = (path.into_inner(), state.clock.now());
    let outcome = web::db(&state, move |c, _| service::submit(c, &me, id, now)).await?;
    let (level, key) = outcome_flash(outcome);
    Ok(web::redirect_flash(
        &format!("/merchant/products/{id}"),
        level,
        key,
    ))
}

// ---------- buyers ----------

#[derive(Template)]
#[template(path = "catalog/product.html", whitespace = "minimize")]
struct ProductPage {
    ctx: PageCtx,
    p: service::PublicProduct,
    can_buy: bool,
    dsr: Option<crate::dsr::score::Badge>,
    ratings: std::sync::Arc<crate::ratings::service::ProductRatings>,
}

impl ProductPage {
    fn ratings_link(&self, n: i64) -> String {
        format!("/products/{}?rpage={n}#ratings", self.p.product.id)
    }
    fn mean_text(&self) -> String {
        self.ratings
            .histogram
            .mean()
            .map(|m| format!("{m:.1}"))
            .unwrap_or_default()
    }
    fn in_stock(&self) -> i64 {
        self.p.skus.iter().map(|s| s.stock).sum()
    }
}

#[get("/products/{id}")]
async fn product_page(
    state: State,
    ctx: PageCtx,
    path: aw::Path<String>,
    q: aw::Query<RatingsQuery>,
) -> Result<HttpResponse, AppError> {
    let id: i64 = path.parse().map_err(|_| AppError::NotFound)?;
    let page = PageQuery { page: q.rpage };
    let (mut p, ratings) = web::db_read(&state, move |c, st| {
        let p = service::public_product(c, id)?;
        let key = format!("{id}:{}", page.number());
        let ratings = st.product_ratings.get_or(key, || {
            crate::ratings::service::product_ratings(c, id, page).map(std::sync::Arc::new)
        })?;
        Ok((p, ratings))
    })
    .await?;
    let dsr = p.badge.take();
    let can_buy = p.shop.status_at(state.clock.now()).can_sell();
    web::render(&ProductPage {
        ctx,
        p,
        can_buy,
        dsr,
        ratings,
    })
}

#[derive(Deserialize)]
struct RatingsQuery {
    rpage: Option<i64>,
}

// ---------- moderators ----------

#[derive(Template)]
#[template(path = "catalog/moderation.html")]
struct ModerationPage {
    ctx: PageCtx,
    queue: bool,
    q: String,
    list: Paginated<ModerationRow>,
}

impl CatalogText for ModerationPage {
    fn ctx(&self) -> &PageCtx {
        &self.ctx
    }
}

impl ModerationPage {
    fn base(&self) -> &'static str {
        if self.queue {
            "/admin/review"
        } else {
            "/admin/products"
        }
    }
    fn page_link(&self, n: i64) -> String {
        let q: String = url::form_urlencoded::byte_serialize(self.q.as_bytes()).collect();
        format!("{}?q={q}&page={n}", self.base())
    }
    /// The product's text with every hit marked, as (text, is_hit) pieces.
    fn marked(&self, row: &ModerationRow, field: &str) -> Vec<(String, bool)> {
        let text = match field {
            "title" => &row.product.title,
            "subtitle" => &row.product.subtitle,
            "description" => &row.product.description,
            _ => &row.product.attributes,
        };
        let needles: Vec<&str> = row
            .hits
            .iter()
            .filter(|h| h.field == field && !h.matched.is_empty())
            .map(|h| h.matched.as_str())
            .collect();
        mark(text, &needles)
    }
}

/// Splits `text` into pieces, flagging the occurrences of any needle.
pub fn mark(text: &str, needles: &[&str]) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        let next = needles
            .iter()
            .filter_map(|n| rest.find(n).map(|i| (i, *n)))
            .min_by_key(|(i, n)| (*i, usize::MAX - n.len()));
        match next {
            Some((i, n)) if !n.is_empty() => {
                if i > 0 {
                    out.push((rest[..i].to_string(), false));
                }
                out.push((n.to_string(), true));
                rest = &rest[i + n.len()..];
            }
            _ => {
                if !rest.is_empty() {
                    out.push((rest.to_string(), false));
                }
                return out;
            }
        }
    }
}

#[derive(Deserialize)]
struct ModQuery {
    q: Option<String>,
    page: Option<i64>,
}

async fn moderation_render(
    state: &State,
    ctx: PageCtx,
    viewer: &Viewer,
    queue: bool,
    q: &ModQuery,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_role(Role::Moderator)?.clone();
    let query: String = q.q.clone().unwrap_or_default().chars().take(100).collect();
    let page = PageQuery { page: q.page };
    let qq = query.clone();
    let list = web::db(state, move |c, _| {
        service::moderation_list(c, &me, queue, &qq, page)
    })
    .await?;
    web::render(&ModerationPage {
        ctx,
        queue,
        q: query,
        list,
    })
}

#[get("/admin/review")]
async fn review_queue(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    q: aw::Query<ModQuery>,
) -> Result<HttpResponse, AppError> {
    moderation_render(&state, ctx, &viewer, true, &q).await
}

#[get("/admin/products")]
async fn admin_products(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    q: aw::Query<ModQuery>,
) -> Result<HttpResponse, AppError> {
    moderation_render(&state, ctx, &viewer, false, &q).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DecisionForm {
    reason: String,
    back: String,
}

#[post("/admin/products/{id}/{decision}")]
async fn moderate_product(
    state: State,
    viewer: Viewer,
    path: aw::Path<(i64, String)>,
    CsrfForm(form): CsrfForm<DecisionForm>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_role(Role::Moderator)?.clone();
    let (id, decision) = path.into_inner();
    let decision = match decision.as_str() {
        "approve" => Decision::Approve,
        "reject" => Decision::Reject,
        "delist" => Decision::Delist,
        "relist" => Decision::Relist,
        _ => return Err(AppError::NotFound),
    };
    let back = web::safe_next(Some(&form.back));
    let now = state.clock.now();
    match web::db(&state, move |c, _| {
        service::moderate(c, &me, id, decision, &form.reason, now)
    })
    .await
    {
        Ok(()) => Ok(web::redirect_flash(
            &back,
            FlashLevel::Success,
            "product.decided",
        )),
        Err(AppError::Invalid(_)) => Ok(web::redirect_flash(
            &back,
            FlashLevel::Error,
            "shop.rebind_reason",
        )),
        Err(e) => Err(e),
    }
}

// ---------- platform search ----------

#[derive(Template)]
#[template(path = "catalog/search.html")]
struct SearchPage {
    ctx: PageCtx,
    q: String,
    category: Option<i64>,
    sort: search::Sort,
    categories: Vec<Category>,
    list: Paginated<search::SearchHit>,
    sorts: [search::Sort; 5],
}

impl SearchPage {
    fn link(&self, sort: &search::Sort, page: i64) -> String {
        let q: String = url::form_urlencoded::byte_serialize(self.q.as_bytes()).collect();
        let cat = self.category.map(|c| c.to_string()).unwrap_or_default();
        format!(
            "/search?q={q}&category={cat}&sort={}&page={page}",
            sort.as_str()
        )
    }
    fn page_link(&self, n: i64) -> String {
        self.link(&self.sort, n)
    }
    fn sort_name(&self, s: &search::Sort) -> String {
        self.ctx
            .t(&format!("search.sort.{}", s.as_str()))
            .into_owned()
    }
    fn cat_name(&self, c: &Category) -> String {
        c.name(self.ctx.locale).to_string()
    }
    fn is_category(&self, c: &Category) -> bool {
        self.category == Some(c.id)
    }
}

#[derive(Deserialize)]
struct SearchQuery {
    q: Option<String>,
    category: Option<String>,
    sort: Option<String>,
    page: Option<i64>,
}

#[get("/search")]
async fn search_page(
    state: State,
    ctx: PageCtx,
    q: aw::Query<SearchQuery>,
) -> Result<HttpResponse, AppError> {
    let query: String = q.q.clone().unwrap_or_default().chars().take(60).collect();
    let category = q.category.as_deref().and_then(|c| c.parse::<i64>().ok());
    let sort = search::Sort::parse(q.sort.as_deref().unwrap_or(""));
    let page = PageQuery { page: q.page };
    let (qq, now) = (query.clone(), state.clock.now());
    let (list, categories) = web::db(&state, move |c, st| {
        Ok((
            search::search(c, &st.search_stats, &qq, category, sort, page, now)?,
            st.search_stats
                .top_categories(|| crate::shops::service::top_categories(c))?,
        ))
    })
    .await?;
    web::render(&SearchPage {
        ctx,
        q: query,
        category,
        sort,
        categories,
        list,
        sorts: search::Sort::ALL,
    })
}
