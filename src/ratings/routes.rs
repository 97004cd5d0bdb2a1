//! Rating pages: the buyer's rating form of an order, and the shop's list with replies.

use actix_web::http::StatusCode;
use actix_web::{get, post, web as aw, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::model::RatingRow;
use super::service::{self, Rateable, RatingForm};
use crate::accounts::Viewer;
use crate::error::{AppError, FieldErrors};
use crate::web::{self, CsrfForm, CsrfMultipart, FlashLevel, PageCtx, Paginated, State};

pub fn routes(cfg: &mut aw::ServiceConfig) {
    cfg.service(rate_page)
        .service(rate_submit)
        .service(merchant_ratings)
        .service(rating_reply);
}

/// The dimensions of a rating: (form field, label key).
pub const DIMENSIONS: [(&str, &str); 3] = [
    ("described", "dsr.described"),
    ("service", "dsr.service"),
    ("logistics", "dsr.logistics"),
];

#[derive(Template)]
#[template(path = "ratings/rate.html")]
struct RatePage {
    ctx: PageCtx,
    r: Rateable,
    form: RatingForm,
    errors: FieldErrors,
}

impl RatePage {
    fn chosen(&self, field: &str, stars: &i64) -> bool {
        let v = match field {
            "described" => self.form.described,
            "service" => self.form.service,
            _ => self.form.logistics,
        };
        v == *stars
    }
    fn until(&self) -> String {
        self.r
            .open_until
            .map(|t| self.ctx.time(&t))
            .unwrap_or_default()
    }
}

async fn render_rate(
    state: &State,
    ctx: PageCtx,
    viewer: &Viewer,
    no: String,
    status: StatusCode,
    form: RatingForm,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let now = state.clock.now();
    let r = web::db(state, move |c, _| service::rateable(c, &me, &no, now)).await?;
    web::render_status(
        status,
        &RatePage {
            ctx,
            r,
            form,
            errors,
        },
    )
}

#[get("/orders/{no}/rate")]
async fn rate_page(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    path: aw::Path<String>,
) -> Result<HttpResponse, AppError> {
    let form = RatingForm::default();
    let ok = StatusCode::OK;
    render_rate(
        &state,
        ctx,
        &viewer,
        path.into_inner(),
        ok,
        form,
        FieldErrors::new(),
    )
    .await
}

#[post("/orders/{no}/rate")]
async fn rate_submit(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    path: aw::Path<String>,
    form: CsrfMultipart,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let no = path.into_inner();
    let mut errors = FieldErrors::new();
    let photos = crate::accounts::routes::photos_of(&form, &mut errors);
    let stars = |f: &str| form.field(f).and_then(|v| v.parse().ok()).unwrap_or(0);
    let rating = RatingForm {
        described: stars("described"),
        service: stars("service"),
        logistics: stars("logistics"),
        body: form.field("body").unwrap_or_default().to_string(),
    };
    let result = if errors.is_empty() {
        let (n, f, now) = (no.clone(), rating.clone(), state.clock.now());
        web::db(&state, move |c, st| {
            let month = crate::dsr::job::platform_day(st.settings.tz, now)
                .format("%Y-%m")
                .to_string();
            let rated = service::rate(c, &me, &n, &f, &photos, now, &month)?;
            st.product_ratings.clear(); // the product pages show it at once
            Ok(rated)
        })
        .await
        .map(|_| ())
    } else {
        Err(AppError::Invalid(errors))
    };
    match result {
        Ok(()) => Ok(web::redirect_flash(
            &format!("/orders/{no}/rate"),
            FlashLevel::Success,
            "rating.thanks",
        )),
        Err(AppError::Invalid(errors)) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            render_rate(&state, ctx, &viewer, no, status, rating, errors).await
        }
        Err(e) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "ratings/merchant.html")]
struct MerchantRatingsPage {
    ctx: PageCtx,
    list: Paginated<RatingRow>,
    unreplied: bool,
}

impl MerchantRatingsPage {
    fn page_link(&self, n: i64) -> String {
        format!(
            "/merchant/ratings?unreplied={}&page={n}",
            u8::from(self.unreplied)
        )
    }
}

#[derive(Deserialize)]
struct ListQuery {
    unreplied: Option<u8>,
    page: Option<i64>,
}

#[get("/merchant/ratings")]
async fn merchant_ratings(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    q: aw::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let unreplied = q.unreplied == Some(1);
    let page = crate::web::PageQuery { page: q.page };
    let list = web::db(&state, move |c, _| {
        service::shop_ratings(c, &me, unreplied, page)
    })
    .await?;
    web::render(&MerchantRatingsPage {
        ctx,
        list,
        unreplied,
    })
}

#[derive(Deserialize)]
struct ReplyForm {
    #[serde(default)]
    reply: String,
}

#[post("/merchant/ratings/{id}/reply")]
async fn rating_reply(
    state: State,
    viewer: Viewer,
    path: aw::Path<i64>,
    CsrfForm(form): CsrfForm<ReplyForm>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let (id, now) = (path.into_inner(), state.clock.now());
    web::db(&state, move |c, st| {
        service::reply(c, &me, id, &form.reply, now)?;
        st.product_ratings.clear(); // the product pages show it at once
        Ok(())
    })
    .await?;
    Ok(web::redirect_flash(
        "/merchant/ratings",
        FlashLevel::Success,
        "rating.replied",
    ))
}
