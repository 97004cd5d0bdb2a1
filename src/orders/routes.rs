//! Order pages: cart, addresses, checkout, the simulated payment provider and its callback,
//! the buyer's orders, and the merchant's order list with shipping.

use actix_web::http::StatusCode;
use actix_web::{get, post, web as aw, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::complaints::{self, ComplaintRow};
use super::model::{Address, OrderStatus};
use super::payment::{self, PaymentProvider, Simulated};
use super::refunds::{self, RefundRequest, RefundRow};
use super::service::{
    self, AddressForm, Cart, CheckoutForm, EventResult, Intent, MerchantFilter, OrderDetail,
    OrderSummary, ShipForm,
};
use crate::accounts::{Role, Viewer};
use crate::error::{AppError, FieldErrors};
use crate::web::{self, CsrfForm, CsrfMultipart, FlashLevel, PageCtx, PageQuery, Paginated, State};

pub fn routes(cfg: &mut aw::ServiceConfig) {
    cfg.service(cart_page)
        .service(cart_add)
        .service(cart_update)
        .service(checkout_page)
        .service(checkout_submit)
        .service(checkout_done)
        .service(addresses_page)
        .service(address_add)
        .service(address_delete)
        .service(address_default)
        .service(pay_start)
        .service(sim_page)
        .service(sim_submit)
        .service(pay_callback)
        .service(delivery_callback)
        .service(orders_page)
        .service(order_page)
        .service(order_evidence)
        .service(order_cancel)
        .service(order_confirm)
        .service(merchant_overview)
        .service(merchant_orders)
        .service(orders_csv)
        .service(ship_csv)
        .service(merchant_order)
        .service(merchant_ship)
        .service(refund_page)
        .service(refund_submit)
        .service(refund_return)
        .service(merchant_refunds)
        .service(refund_approve)
        .service(refund_reject)
        .service(refund_received)
        .service(complaint_page)
        .service(complaint_submit)
        .service(merchant_complaints)
        .service(complaint_reply)
        .service(admin_complaints)
        .service(complaint_rule);
}

/// Template helpers shared by the order pages.
pub trait OrderText {
    fn ctx(&self) -> &PageCtx;
    fn status_name(&self, s: &str) -> String {
        self.ctx().t(&format!("order.status.{s}")).into_owned()
    }
    fn event_name(&self, s: &str) -> String {
        self.ctx().t(&format!("order.event.{s}")).into_owned()
    }
    fn carrier_name(&self, s: &str) -> String {
        self.ctx().t(&format!("carrier.{s}")).into_owned()
    }
    fn refund_status(&self, s: &str) -> String {
        self.ctx().t(&format!("refund.status.{s}")).into_owned()
    }
    fn refund_kind(&self, s: &str) -> String {
        self.ctx().t(&format!("refund.kind.{s}")).into_owned()
    }
    fn refund_reason(&self, s: &str) -> String {
        self.ctx().t(&format!("refund.reason.{s}")).into_owned()
    }
}

/// Gives a page (with a `ctx` field) the order templates' helpers.
macro_rules! order_text {
    ($page:ty) => {
        impl OrderText for $page {
            fn ctx(&self) -> &PageCtx {
                &self.ctx
            }
        }
    };
}

// ---------- cart ----------

#[derive(Template)]
#[template(path = "orders/cart.html")]
struct CartPage {
    ctx: PageCtx,
    cart: Cart,
    /// SKUs that ran out during a checkout attempt.
    short: Vec<i64>,
    message: Option<String>,
}

impl CartPage {
    fn is_short(&self, sku: &i64) -> bool {
        self.short.contains(sku)
    }
}

fn owner(viewer: &Viewer) -> Result<String, AppError> {
    service::cart_owner(viewer.user.as_ref(), &viewer.visitor)
        .ok_or(AppError::BadRequest("cart.no_cookie"))
}

/// Loads the cart, first carrying an anonymous visitor's cart over to the account.
async fn load_cart(state: &State, viewer: &Viewer) -> Result<Cart, AppError> {
    Ok(load_cart_with(state, viewer, |_| Ok(())).await?.0)
}

/// [`load_cart`], and what `more` reads, in one read of the database (on SQLite without a hop to
/// the blocking pool, see [`web::db_read`]). A visitor's cart has already carried over to the
/// account at sign-in (`accounts::routes::carry_visitor_cart`).
async fn load_cart_with<T, F>(
    state: &State,
    viewer: &Viewer,
    more: F,
) -> Result<(Cart, T), AppError>
where
    F: Fn(&mut crate::db::DbConn) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    let owner = owner(viewer)?;
    let now = state.clock.now();
    web::db_read(state, move |c, _| {
        Ok((service::cart(c, &owner, now)?, more(c)?))
    })
    .await
}

#[get("/cart")]
async fn cart_page(state: State, ctx: PageCtx, viewer: Viewer) -> Result<HttpResponse, AppError> {
    let cart = load_cart(&state, &viewer).await?;
    web::render(&CartPage {
        ctx,
        cart,
        short: Vec::new(),
        message: None,
    })
}

#[derive(Deserialize)]
struct AddForm {
    sku: Option<i64>,
    quantity: Option<i64>,
    buy_now: Option<String>,
}

#[post("/cart/add")]
async fn cart_add(
    state: State,
    viewer: Viewer,
    CsrfForm(form): CsrfForm<AddForm>,
) -> Result<HttpResponse, AppError> {
    let owner = owner(&viewer)?;
    let sku = form.sku.ok_or(AppError::field("sku", "sku_required"))?;
    let qty = form.quantity.unwrap_or(1);
    let now = state.clock.now();
    web::db_write(&state, move |c, _| {
        service::cart_add(c, &owner, sku, qty, now)
    })
    .await?;
    if form.buy_now.is_some() {
        return Ok(web::redirect("/checkout"));
    }
    Ok(web::redirect_flash(
        "/cart",
        FlashLevel::Success,
        "cart.added",
    ))
}

#[derive(Deserialize)]
struct UpdateForm {
    sku: i64,
    quantity: i64,
}

#[post("/cart/update")]
async fn cart_update(
    state: State,
    viewer: Viewer,
    CsrfForm(form): CsrfForm<UpdateForm>,
) -> Result<HttpResponse, AppError> {
    let owner = owner(&viewer)?;
    web::db_write(&state, move |c, _| {
        service::cart_set(c, &owner, form.sku, form.quantity)
    })
    .await?;
    Ok(web::redirect("/cart"))
}

// ---------- checkout ----------

#[derive(Template)]
#[template(path = "orders/checkout.html")]
struct CheckoutPage {
    ctx: PageCtx,
    cart: Cart,
    addresses: Vec<Address>,
    key: String,
    selected: Option<i64>,
    note: String,
    errors: FieldErrors,
    message: Option<String>,
    short: Vec<i64>,
    pay_minutes: i64,
}

impl CheckoutPage {
    fn is_selected(&self, a: &Address) -> bool {
        match self.selected {
            Some(id) => id == a.id,
            None => a.is_default,
        }
    }
    fn is_short(&self, sku: &i64) -> bool {
        self.short.contains(sku)
    }
}

/// What went wrong with a checkout attempt, to show on the page again.
struct Attempt {
    status: StatusCode,
    form: CheckoutForm,
    errors: FieldErrors,
    message: Option<&'static str>,
    short: Vec<i64>,
}

async fn render_checkout(
    state: &State,
    ctx: PageCtx,
    viewer: &Viewer,
    attempt: Option<Attempt>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let (cart, addresses) =
        load_cart_with(state, viewer, move |c| service::addresses_of(c, me.id)).await?;
    let a = attempt.unwrap_or(Attempt {
        status: StatusCode::OK,
        form: CheckoutForm::default(),
        errors: FieldErrors::new(),
        message: None,
        short: Vec::new(),
    });
    // A failed attempt gets a new key: the next submit is a new checkout.
    let page = CheckoutPage {
        message: a.message.map(|m| ctx.t(m).into_owned()),
        ctx,
        cart,
        addresses,
        key: service::new_checkout_key(),
        selected: a.form.address_id,
        note: a.form.note,
        errors: a.errors,
        short: a.short,
        pay_minutes: state.settings.order_pay_minutes,
    };
    web::render_status(a.status, &page)
}

#[get("/checkout")]
async fn checkout_page(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
) -> Result<HttpResponse, AppError> {
    render_checkout(&state, ctx, &viewer, None).await
}

#[post("/checkout")]
async fn checkout_submit(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    CsrfForm(form): CsrfForm<CheckoutForm>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let (f, now, minutes) = (
        form.clone(),
        state.clock.now(),
        state.settings.order_pay_minutes,
    );
    let result = web::db_write(&state, move |c, _| {
        service::checkout(c, &me, &f, now, minutes)
    })
    .await;
    let (status, errors, message, short) = match result {
        Ok(id) => return Ok(web::redirect(&format!("/checkout/{id}"))),
        Err(AppError::Invalid(errors)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            errors,
            Some("error.invalid"),
            Vec::new(),
        ),
        Err(AppError::ConflictOn(key, skus)) => {
            (StatusCode::CONFLICT, FieldErrors::new(), Some(key), skus)
        }
        Err(AppError::Conflict(key)) => (
            StatusCode::CONFLICT,
            FieldErrors::new(),
            Some(key),
            Vec::new(),
        ),
        Err(e) => return Err(e),
    };
    let attempt = Attempt {
        status,
        form,
        errors,
        message,
        short,
    };
    render_checkout(&state, ctx, &viewer, Some(attempt)).await
}

#[derive(Template)]
#[template(path = "orders/placed.html")]
struct PlacedPage {
    ctx: PageCtx,
    checkout_id: i64,
    orders: Vec<OrderSummary>,
    pay_minutes: i64,
}

order_text!(PlacedPage);

impl PlacedPage {
    fn unpaid_total(&self) -> i64 {
        self.orders
            .iter()
            .filter(|o| o.order.is(OrderStatus::PendingPayment))
            .map(|o| o.order.total_fen)
            .sum()
    }
}

#[get("/checkout/{id}")]
async fn checkout_done(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    path: aw::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let id = path.into_inner();
    let orders = web::db(&state, move |c, _| service::checkout_orders(c, &me, id)).await?;
    web::render(&PlacedPage {
        ctx,
        checkout_id: id,
        orders,
        pay_minutes: state.settings.order_pay_minutes,
    })
}

// ---------- addresses ----------

#[derive(Template)]
#[template(path = "orders/addresses.html")]
struct AddressesPage {
    ctx: PageCtx,
    addresses: Vec<Address>,
    form: AddressForm,
    errors: FieldErrors,
    next: String,
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

#[get("/addresses")]
async fn addresses_page(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    q: aw::Query<NextQuery>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let addresses = web::db(&state, move |c, _| service::addresses_of(c, me.id)).await?;
    web::render(&AddressesPage {
        ctx,
        addresses,
        form: AddressForm::default(),
        errors: FieldErrors::new(),
        next: web::safe_next(q.next.as_deref()),
    })
}

#[derive(Deserialize)]
struct AddressPost {
    #[serde(flatten)]
    form: AddressForm,
    #[serde(default)]
    next: String,
}

#[post("/addresses")]
async fn address_add(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    CsrfForm(post): CsrfForm<AddressPost>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let next = web::safe_next(Some(&post.next));
    let (f, now, uid) = (post.form.clone(), state.clock.now(), me.id);
    match web::db(&state, move |c, _| service::add_address(c, &me, &f, now)).await {
        Ok(_) => Ok(web::redirect_flash(
            &next,
            FlashLevel::Success,
            "address.added",
        )),
        Err(AppError::Invalid(errors)) => {
            let addresses = web::db(&state, move |c, _| service::addresses_of(c, uid)).await?;
            web::render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &AddressesPage {
                    ctx,
                    addresses,
                    form: post.form,
                    errors,
                    next,
                },
            )
        }
        Err(e) => Err(e),
    }
}

use crate::web::Empty;

#[post("/addresses/{id}/delete")]
async fn address_delete(
    state: State,
    viewer: Viewer,
    path: aw::Path<i64>,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let id = path.into_inner();
    web::db(&state, move |c, _| service::delete_address(c, &me, id)).await?;
    Ok(web::redirect_flash(
        "/addresses",
        FlashLevel::Success,
        "address.deleted",
    ))
}

#[post("/addresses/{id}/default")]
async fn address_default(
    state: State,
    viewer: Viewer,
    path: aw::Path<i64>,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let id = path.into_inner();
    web::db(&state, move |c, _| service::set_default_address(c, &me, id)).await?;
    Ok(web::redirect("/addresses"))
}

// ---------- payment ----------

fn provider(state: &State) -> Simulated {
    Simulated::new(&state.secret)
}

#[derive(Deserialize)]
struct PayForm {
    checkout: Option<i64>,
    order: Option<String>,
}

#[post("/pay")]
async fn pay_start(
    state: State,
    viewer: Viewer,
    CsrfForm(form): CsrfForm<PayForm>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let p = provider(&state);
    let name = p.name();
    let now = state.clock.now();
    let intent = web::db(&state, move |c, _| {
        service::start_payment(c, &me, name, form.checkout, form.order.as_deref(), now)
    })
    .await?;
    Ok(web::redirect(&p.checkout_url(&intent)))
}

#[derive(Template)]
#[template(path = "orders/sim_pay.html")]
struct SimPage {
    ctx: PageCtx,
    intent: Intent,
}

#[get("/pay/sim/{intent}")]
async fn sim_page(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    path: aw::Path<String>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let intent = path.into_inner();
    let intent = web::db(&state, move |c, _| service::intent_of(c, &me, &intent)).await?;
    web::render(&SimPage { ctx, intent })
}

#[derive(Deserialize)]
struct SimForm {
    outcome: String,
}

/// The simulated provider's page posts here: the provider "charges" and calls back.
#[post("/pay/sim/{intent}")]
async fn sim_submit(
    state: State,
    viewer: Viewer,
    path: aw::Path<String>,
    CsrfForm(form): CsrfForm<SimForm>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let intent = path.into_inner();
    let succeeded = match form.outcome.as_str() {
        "succeeded" => true,
        "failed" => false,
        _ => return Err(AppError::BadRequest("pay.bad_outcome")),
    };
    let p = provider(&state);
    let now = state.clock.now();
    let i = intent.clone();
    let (event_id, sig) = p.callback(&intent, succeeded);
    let result = web::db(&state, move |c, _| {
        // Only the buyer's own intent, and only while it is open.
        let info = service::intent_of(c, &me, &i)?;
        if !info.pending {
            return Err(AppError::Conflict("order.conflict.pay"));
        }
        let ev = p
            .verify(&event_id, &i, payment::outcome_str(succeeded), &sig)
            .ok_or(AppError::Internal("simulated signature".into()))?;
        service::apply_payment_event(c, &ev, now)
    })
    .await?;
    Ok(match result {
        EventResult::Applied { paid } if paid.len() == 1 => web::redirect_flash(
            &format!("/orders/{}", paid[0]),
            FlashLevel::Success,
            "pay.succeeded",
        ),
        EventResult::Applied { paid } if !paid.is_empty() => {
            web::redirect_flash("/orders", FlashLevel::Success, "pay.succeeded")
        }
        _ if !succeeded => web::redirect_flash("/orders", FlashLevel::Error, "pay.failed"),
        _ => web::redirect("/orders"),
    })
}

#[derive(Deserialize)]
struct CallbackForm {
    event_id: String,
    intent: String,
    outcome: String,
    signature: String,
}

/// The provider's server-to-server callback. No CSRF token (no browser session is involved):
/// the signature is the authentication. A repeated event id answers 200 and changes nothing.
#[post("/pay/callback/sim")]
async fn pay_callback(
    state: State,
    form: aw::Form<CallbackForm>,
) -> Result<HttpResponse, AppError> {
    let ev = provider(&state)
        .verify(&form.event_id, &form.intent, &form.outcome, &form.signature)
        .ok_or(AppError::Forbidden("pay.bad_signature"))?;
    let now = state.clock.now();
    let r = web::db(&state, move |c, _| {
        service::apply_payment_event(c, &ev, now)
    })
    .await?;
    let body = match r {
        EventResult::Applied { .. } => "ok",
        EventResult::Duplicate => "ok duplicate",
    };
    Ok(HttpResponse::Ok().content_type("text/plain").body(body))
}

#[derive(Deserialize)]
struct DeliveryForm {
    order_no: String,
    signature: String,
}

/// A carrier's delivery scan (signed like the payment callback).
#[post("/logistics/callback/sim")]
async fn delivery_callback(
    state: State,
    form: aw::Form<DeliveryForm>,
) -> Result<HttpResponse, AppError> {
    let expected = payment::sign_delivery(&state.secret, &form.order_no);
    if !crate::web::csrf::ct_eq(&expected, &form.signature) {
        return Err(AppError::Forbidden("pay.bad_signature"));
    }
    let (no, now) = (form.order_no.clone(), state.clock.now());
    web::db(&state, move |c, _| service::mark_delivered(c, &no, now)).await?;
    Ok(HttpResponse::Ok().content_type("text/plain").body("ok"))
}

// ---------- buyer orders ----------

#[derive(Template)]
#[template(path = "orders/list.html")]
struct OrdersPage {
    ctx: PageCtx,
    list: Paginated<OrderSummary>,
    status: String,
    statuses: [OrderStatus; 7],
}

order_text!(OrdersPage);

impl OrdersPage {
    fn page_link(&self, n: i64) -> String {
        format!("/orders?status={}&page={n}", self.status)
    }
}

/// `?status=&page=` of a list.
#[derive(Deserialize)]
struct OrdersQuery {
    status: Option<String>,
    page: Option<i64>,
}

#[get("/orders")]
async fn orders_page(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    q: aw::Query<OrdersQuery>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let status = q.status.as_deref().and_then(OrderStatus::parse);
    let page = PageQuery { page: q.page };
    let list = web::db(&state, move |c, _| {
        service::buyer_orders(c, &me, status, page)
    })
    .await?;
    web::render(&OrdersPage {
        ctx,
        list,
        status: status.map(|s| s.as_str().to_string()).unwrap_or_default(),
        statuses: OrderStatus::ALL,
    })
}

#[derive(Template)]
#[template(path = "orders/detail.html")]
struct OrderPage {
    ctx: PageCtx,
    d: OrderDetail,
    merchant: bool,
    cancel_reasons: [&'static str; 4],
    carriers: [&'static str; 8],
    errors: FieldErrors,
    /// The daily recommended shops of the order's category (buyer view).
    recommended: Vec<crate::dsr::score::Recommended>,
}

order_text!(OrderPage);

impl OrderPage {
    /// Show the after-sale entry: the order is paid or later, something is left to refund and
    /// no request is open. (The service checks the after-sale window.)
    fn can_request_refund(&self) -> bool {
        let o = &self.d.order;
        let state_ok = o.is(OrderStatus::Paid)
            || o.is(OrderStatus::Shipped)
            || o.is(OrderStatus::Delivered)
            || o.is(OrderStatus::Completed);
        state_ok && o.total_fen > o.refunded_fen && !self.d.refunds.iter().any(|r| r.is_open())
    }
    fn has_open_complaint(&self) -> bool {
        self.d.complaints.iter().any(|c| c.is_open())
    }
}

#[get("/orders/{no}")]
async fn order_page(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    path: aw::Path<String>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let no = path.into_inner();
    let (d, recommended) = web::db(&state, move |c, _| {
        let d = service::buyer_order(c, &me, &no)?;
        let recommended = crate::dsr::score::recommended_for(c, d.order.shop_id)?;
        Ok((d, recommended))
    })
    .await?;
    web::render(&OrderPage {
        ctx,
        d,
        merchant: false,
        cancel_reasons: service::CANCEL_REASONS,
        carriers: service::CARRIERS,
        errors: FieldErrors::new(),
        recommended,
    })
}

#[derive(Deserialize)]
struct CancelForm {
    #[serde(default)]
    reason: String,
}

#[get("/orders/{no}/evidence/{media}")]
async fn order_evidence(
    state: State,
    viewer: Viewer,
    path: aw::Path<(String, i64)>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let (no, media) = path.into_inner();
    let file = web::db(&state, move |c, _| service::evidence(c, &me, &no, media)).await?;
    Ok(web::media_response(file))
}

/// A buyer's action on one of their orders: run it, then back to the order with a message.
async fn on_own_order<F>(
    state: &State,
    viewer: &Viewer,
    no: String,
    done: &'static str,
    action: F,
) -> Result<HttpResponse, AppError>
where
    F: FnOnce(
            &mut crate::db::DbConn,
            &crate::accounts::SessionUser,
            &str,
            chrono::NaiveDateTime,
        ) -> Result<(), AppError>
        + Send
        + 'static,
{
    let me = viewer.require_user()?.clone();
    let (n, now) = (no.clone(), state.clock.now());
    web::db(state, move |c, _| action(c, &me, &n, now)).await?;
    Ok(web::redirect_flash(
        &format!("/orders/{no}"),
        FlashLevel::Success,
        done,
    ))
}

#[post("/orders/{no}/cancel")]
async fn order_cancel(
    state: State,
    viewer: Viewer,
    path: aw::Path<String>,
    CsrfForm(form): CsrfForm<CancelForm>,
) -> Result<HttpResponse, AppError> {
    on_own_order(
        &state,
        &viewer,
        path.into_inner(),
        "order.cancelled",
        move |c, me, no, now| service::cancel_by_buyer(c, me, no, &form.reason, now),
    )
    .await
}

#[post("/orders/{no}/confirm")]
async fn order_confirm(
    state: State,
    viewer: Viewer,
    path: aw::Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<HttpResponse, AppError> {
    on_own_order(
        &state,
        &viewer,
        path.into_inner(),
        "order.confirmed",
        service::confirm_receipt,
    )
    .await
}

// ---------- merchant ----------

#[derive(Template)]
#[template(path = "orders/merchant_list.html")]
struct MerchantOrdersPage {
    ctx: PageCtx,
    list: Paginated<OrderSummary>,
    f: MerchantFilter,
    statuses: [OrderStatus; 7],
}

order_text!(MerchantOrdersPage);

impl MerchantOrdersPage {
    fn query(&self) -> String {
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        format!(
            "status={}&from={}&to={}&order_no={}&buyer={}",
            enc(&self.f.status),
            enc(&self.f.from),
            enc(&self.f.to),
            enc(&self.f.order_no),
            enc(&self.f.buyer)
        )
    }
    fn page_link(&self, n: i64) -> String {
        format!("/merchant/orders?{}&page={n}", self.query())
    }
    /// The export of exactly what the filters show.
    fn csv_link(&self) -> String {
        format!("/merchant/orders.csv?{}", self.query())
    }
}

#[get("/merchant/orders")]
async fn merchant_orders(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    q: aw::Query<MerchantFilter>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let f = MerchantFilter {
        status: q.status.chars().take(20).collect(),
        from: q.from.chars().take(10).collect(),
        to: q.to.chars().take(10).collect(),
        order_no: q.order_no.chars().take(30).collect(),
        buyer: q.buyer.chars().take(40).collect(),
        page: q.page,
    };
    let ff = f.clone();
    let list = web::db(&state, move |c, _| service::merchant_orders(c, &me, &ff)).await?;
    web::render(&MerchantOrdersPage {
        ctx,
        list,
        f,
        statuses: OrderStatus::ALL,
    })
}

async fn render_merchant_order(
    state: &State,
    ctx: PageCtx,
    viewer: &Viewer,
    no: String,
    status: StatusCode,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let d = web::db(state, move |c, _| service::merchant_order(c, &me, &no)).await?;
    web::render_status(
        status,
        &OrderPage {
            ctx,
            d,
            merchant: true,
            cancel_reasons: service::CANCEL_REASONS,
            carriers: service::CARRIERS,
            errors,
            recommended: Vec::new(),
        },
    )
}

#[get("/merchant/orders/{no}")]
async fn merchant_order(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    path: aw::Path<String>,
) -> Result<HttpResponse, AppError> {
    render_merchant_order(
        &state,
        ctx,
        &viewer,
        path.into_inner(),
        StatusCode::OK,
        FieldErrors::new(),
    )
    .await
}

#[post("/merchant/orders/{no}/ship")]
async fn merchant_ship(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    path: aw::Path<String>,
    CsrfForm(form): CsrfForm<ShipForm>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let no = path.into_inner();
    let (n, now) = (no.clone(), state.clock.now());
    match web::db(&state, move |c, _| service::ship(c, &me, &n, &form, now)).await {
        Ok(()) => Ok(web::redirect_flash(
            &format!("/merchant/orders/{no}"),
            FlashLevel::Success,
            "order.shipped_flash",
        )),
        Err(AppError::Invalid(errors)) => {
            render_merchant_order(
                &state,
                ctx,
                &viewer,
                no,
                StatusCode::UNPROCESSABLE_ENTITY,
                errors,
            )
            .await
        }
        Err(e) => Err(e),
    }
}

// ---------- after-sale ----------

#[derive(Template)]
#[template(path = "orders/refund.html")]
struct RefundPage {
    ctx: PageCtx,
    d: OrderDetail,
    reasons: [(&'static str, &'static str); 7],
    form: RefundRequest,
    errors: FieldErrors,
}

order_text!(RefundPage);

impl RefundPage {
    fn refundable(&self) -> i64 {
        self.d.order.total_fen - self.d.order.refunded_fen
    }
    fn unshipped(&self) -> bool {
        self.d.order.is(OrderStatus::Paid)
    }
}

async fn render_refund(
    state: &State,
    ctx: PageCtx,
    viewer: &Viewer,
    no: String,
    status: StatusCode,
    form: RefundRequest,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let d = web::db(state, move |c, _| service::buyer_order(c, &me, &no)).await?;
    web::render_status(
        status,
        &RefundPage {
            ctx,
            d,
            reasons: refunds::REASONS,
            form,
            errors,
        },
    )
}

#[get("/orders/{no}/refund")]
async fn refund_page(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    path: aw::Path<String>,
) -> Result<HttpResponse, AppError> {
    let form = RefundRequest {
        kind: "refund_only".into(),
        ..RefundRequest::default()
    };
    render_refund(
        &state,
        ctx,
        &viewer,
        path.into_inner(),
        StatusCode::OK,
        form,
        FieldErrors::new(),
    )
    .await
}

#[post("/orders/{no}/refund")]
async fn refund_submit(
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
    let req = RefundRequest {
        kind: form.field("kind").unwrap_or_default().to_string(),
        reason: form.field("reason").unwrap_or_default().to_string(),
        note: form.field("note").unwrap_or_default().to_string(),
        amount: form.field("amount").unwrap_or_default().to_string(),
        photos,
    };
    let result = if errors.is_empty() {
        let (r, n, now) = (req.clone(), no.clone(), state.clock.now());
        let rules = refunds::RefundRules::from_settings(&state.settings);
        web::db(&state, move |c, _| {
            refunds::request(c, &me, &n, &r, now, &rules)
        })
        .await
        .map(|_| ())
    } else {
        Err(AppError::Invalid(errors))
    };
    match result {
        Ok(()) => Ok(web::redirect_flash(
            &format!("/orders/{no}"),
            FlashLevel::Success,
            "refund.requested",
        )),
        Err(AppError::Invalid(errors)) => {
            let shown = RefundRequest {
                photos: Vec::new(),
                ..req
            };
            render_refund(
                &state,
                ctx,
                &viewer,
                no,
                StatusCode::UNPROCESSABLE_ENTITY,
                shown,
                errors,
            )
            .await
        }
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
struct ReturnForm {
    #[serde(default)]
    return_tracking_no: String,
}

#[post("/orders/{no}/refund/return")]
async fn refund_return(
    state: State,
    viewer: Viewer,
    path: aw::Path<String>,
    CsrfForm(form): CsrfForm<ReturnForm>,
) -> Result<HttpResponse, AppError> {
    on_own_order(
        &state,
        &viewer,
        path.into_inner(),
        "refund.return_sent",
        move |c, me, no, now| refunds::return_shipped(c, me, no, &form.return_tracking_no, now),
    )
    .await
}

#[derive(Template)]
#[template(path = "orders/merchant_refunds.html")]
struct MerchantRefundsPage {
    ctx: PageCtx,
    list: Paginated<RefundRow>,
    status: String,
}

order_text!(MerchantRefundsPage);

impl MerchantRefundsPage {
    fn page_link(&self, n: i64) -> String {
        format!("/merchant/refunds?status={}&page={n}", self.status)
    }
}

#[get("/merchant/refunds")]
async fn merchant_refunds(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    q: aw::Query<OrdersQuery>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let status: String = q
        .status
        .clone()
        .unwrap_or_default()
        .chars()
        .take(20)
        .collect();
    let (s, page) = (status.clone(), PageQuery { page: q.page });
    let list = web::db(&state, move |c, _| refunds::shop_list(c, &me, &s, page)).await?;
    web::render(&MerchantRefundsPage { ctx, list, status })
}

#[derive(Deserialize)]
struct DecisionForm {
    #[serde(default)]
    return_address: String,
    #[serde(default)]
    reject_reason: String,
    restock: Option<String>,
    /// The order page to return to.
    #[serde(default)]
    order_no: String,
}

/// Back to the order's page in the merchant's console (or the request list).
fn back_to(order_no: &str, key: &'static str) -> HttpResponse {
    let ok = !order_no.is_empty()
        && order_no.len() <= 30
        && order_no.bytes().all(|b| b.is_ascii_digit());
    let to = if ok {
        format!("/merchant/orders/{order_no}")
    } else {
        "/merchant/refunds".to_string()
    };
    web::redirect_flash(&to, FlashLevel::Success, key)
}

#[post("/merchant/refunds/{id}/approve")]
async fn refund_approve(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    path: aw::Path<i64>,
    CsrfForm(form): CsrfForm<DecisionForm>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let (id, now, addr) = (
        path.into_inner(),
        state.clock.now(),
        form.return_address.clone(),
    );
    match web::db(&state, move |c, _| refunds::approve(c, &me, id, &addr, now)).await {
        Ok(()) => Ok(back_to(&form.order_no, "refund.approved")),
        Err(AppError::Invalid(errors)) => {
            render_merchant_order(
                &state,
                ctx,
                &viewer,
                form.order_no,
                StatusCode::UNPROCESSABLE_ENTITY,
                errors,
            )
            .await
        }
        Err(e) => Err(e),
    }
}

#[post("/merchant/refunds/{id}/reject")]
async fn refund_reject(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    path: aw::Path<i64>,
    CsrfForm(form): CsrfForm<DecisionForm>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let (id, now, reason) = (
        path.into_inner(),
        state.clock.now(),
        form.reject_reason.clone(),
    );
    match web::db(&state, move |c, _| {
        refunds::reject(c, &me, id, &reason, now)
    })
    .await
    {
        Ok(()) => Ok(back_to(&form.order_no, "refund.rejected")),
        Err(AppError::Invalid(errors)) => {
            render_merchant_order(
                &state,
                ctx,
                &viewer,
                form.order_no,
                StatusCode::UNPROCESSABLE_ENTITY,
                errors,
            )
            .await
        }
        Err(e) => Err(e),
    }
}

#[post("/merchant/refunds/{id}/received")]
async fn refund_received(
    state: State,
    viewer: Viewer,
    path: aw::Path<i64>,
    CsrfForm(form): CsrfForm<DecisionForm>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let (id, now, restock) = (path.into_inner(), state.clock.now(), form.restock.is_some());
    web::db(&state, move |c, _| {
        refunds::confirm_return(c, &me, id, restock, now)
    })
    .await?;
    Ok(back_to(&form.order_no, "refund.done"))
}

// ---------- complaints ----------

#[derive(Template)]
#[template(path = "orders/complaint.html")]
struct ComplaintPage {
    ctx: PageCtx,
    d: OrderDetail,
    reasons: [&'static str; 6],
    reason: String,
    body: String,
    errors: FieldErrors,
}

async fn render_complaint(
    state: &State,
    ctx: PageCtx,
    viewer: &Viewer,
    no: String,
    status: StatusCode,
    (reason, body): (String, String),
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let d = web::db(state, move |c, _| service::buyer_order(c, &me, &no)).await?;
    web::render_status(
        status,
        &ComplaintPage {
            ctx,
            d,
            reasons: complaints::REASONS,
            reason,
            body,
            errors,
        },
    )
}

#[get("/orders/{no}/complaint")]
async fn complaint_page(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    path: aw::Path<String>,
) -> Result<HttpResponse, AppError> {
    let typed = (String::new(), String::new());
    let no = path.into_inner();
    render_complaint(
        &state,
        ctx,
        &viewer,
        no,
        StatusCode::OK,
        typed,
        FieldErrors::new(),
    )
    .await
}

#[post("/orders/{no}/complaint")]
async fn complaint_submit(
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
    let reason = form.field("reason").unwrap_or_default().to_string();
    let body = form.field("body").unwrap_or_default().to_string();
    let result = if errors.is_empty() {
        let (n, r, b, now) = (no.clone(), reason.clone(), body.clone(), state.clock.now());
        web::db(&state, move |c, _| {
            complaints::file(c, &me, &n, &r, &b, &photos, now)
        })
        .await
        .map(|_| ())
    } else {
        Err(AppError::Invalid(errors))
    };
    match result {
        Ok(()) => Ok(web::redirect_flash(
            &format!("/orders/{no}"),
            FlashLevel::Success,
            "complaint.filed",
        )),
        Err(AppError::Invalid(errors)) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            render_complaint(&state, ctx, &viewer, no, status, (reason, body), errors).await
        }
        Err(e) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "orders/complaints.html")]
struct ComplaintsPage {
    ctx: PageCtx,
    list: Paginated<ComplaintRow>,
    /// The moderators' queue (with ruling forms) rather than the shop's list.
    moderator: bool,
    ruled: bool,
}

impl ComplaintsPage {
    fn page_link(&self, n: i64) -> String {
        if self.moderator {
            format!("/admin/complaints?ruled={}&page={n}", u8::from(self.ruled))
        } else {
            format!("/merchant/complaints?page={n}")
        }
    }
    fn reason_name(&self, r: &str) -> String {
        self.ctx.t(&format!("complaint.reason.{r}")).into_owned()
    }
}

#[get("/merchant/complaints")]
async fn merchant_complaints(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    q: aw::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let page = q.into_inner();
    let list = web::db(&state, move |c, _| complaints::shop_list(c, &me, page)).await?;
    web::render(&ComplaintsPage {
        ctx,
        list,
        moderator: false,
        ruled: false,
    })
}

#[derive(Deserialize)]
struct ReplyForm {
    #[serde(default)]
    reply: String,
}

#[post("/merchant/complaints/{id}/reply")]
async fn complaint_reply(
    state: State,
    viewer: Viewer,
    path: aw::Path<i64>,
    CsrfForm(form): CsrfForm<ReplyForm>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let (id, now) = (path.into_inner(), state.clock.now());
    web::db(&state, move |c, _| {
        complaints::reply(c, &me, id, &form.reply, now)
    })
    .await?;
    Ok(web::redirect_flash(
        "/merchant/complaints",
        FlashLevel::Success,
        "complaint.replied_flash",
    ))
}

#[derive(Deserialize)]
struct QueueQuery {
    ruled: Option<u8>,
    page: Option<i64>,
}

#[get("/admin/complaints")]
async fn admin_complaints(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    q: aw::Query<QueueQuery>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_role(Role::Moderator)?.clone();
    let ruled = q.ruled == Some(1);
    let page = PageQuery { page: q.page };
    let list = web::db(&state, move |c, _| complaints::queue(c, &me, !ruled, page)).await?;
    web::render(&ComplaintsPage {
        ctx,
        list,
        moderator: true,
        ruled,
    })
}

#[derive(Deserialize)]
struct RuleForm {
    #[serde(default)]
    verdict: String,
    #[serde(default)]
    note: String,
}

#[post("/admin/complaints/{id}/rule")]
async fn complaint_rule(
    state: State,
    viewer: Viewer,
    path: aw::Path<i64>,
    CsrfForm(form): CsrfForm<RuleForm>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_role(Role::Moderator)?.clone();
    let at_fault = match form.verdict.as_str() {
        "at_fault" => true,
        "not_at_fault" => false,
        _ => return Err(AppError::field("verdict", "complaint_verdict")),
    };
    let (id, now) = (path.into_inner(), state.clock.now());
    web::db(&state, move |c, _| {
        complaints::rule(c, &me, id, at_fault, &form.note, now)
    })
    .await?;
    Ok(web::redirect_flash(
        "/admin/complaints",
        FlashLevel::Success,
        "complaint.ruled_flash",
    ))
}

// ---------- merchant overview ----------

#[derive(Template)]
#[template(path = "orders/overview.html")]
struct OverviewPage {
    ctx: PageCtx,
    o: service::Overview,
    chart: String,
}

#[get("/merchant/overview")]
async fn merchant_overview(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let (now, tz) = (state.clock.now(), state.settings.tz);
    let o = web::db(&state, move |c, _| service::overview(c, &me, now, tz)).await?;
    let series: Vec<(String, i64)> = o
        .daily
        .iter()
        .map(|(d, v)| (d.format("%m-%d").to_string(), *v))
        .collect();
    let chart = web::chart::bars(&ctx.t("overview.chart"), &series, crate::i18n::money);
    web::render(&OverviewPage { ctx, o, chart })
}

// ---------- order CSV ----------

/// Orders exported per database round trip.
const CSV_CHUNK: i64 = 1000;

/// The filtered orders as CSV, streamed chunk by chunk (memory stays flat for any number).
#[get("/merchant/orders.csv")]
async fn orders_csv(
    state: State,
    viewer: Viewer,
    q: aw::Query<MerchantFilter>,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let shop = web::db(&state, move |c, _| service::export_shop(c, &me)).await?;
    let f = q.into_inner();
    let tz = state.settings.tz;
    let name = format!("orders-{}.csv", state.clock.now().format("%Y%m%d-%H%M%S"));
    Ok(web::csv_stream(
        state,
        &name,
        service::csv_header(),
        move |c, before| service::csv_chunk(c, shop, &f, before, CSV_CHUNK, tz),
    ))
}

#[post("/merchant/orders/ship.csv")]
async fn ship_csv(
    state: State,
    ctx: PageCtx,
    viewer: Viewer,
    mp: CsrfMultipart,
) -> Result<HttpResponse, AppError> {
    let me = viewer.require_user()?.clone();
    let Some(file) = mp.file("file").map(|f| f.bytes.clone()) else {
        return Ok(web::redirect_flash(
            "/merchant/orders",
            FlashLevel::Error,
            "csv.no_file",
        ));
    };
    let now = state.clock.now();
    match web::db(&state, move |c, _| service::ship_csv(c, &me, &file, now)).await? {
        Ok(_) => Ok(web::redirect_flash(
            "/merchant/orders",
            FlashLevel::Success,
            "order.batch_shipped",
        )),
        Err(errors) => web::render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &crate::catalog::routes::ImportErrors {
                ctx,
                errors,
                back: "/merchant/orders",
                back_label: "order.merchant_title",
            },
        ),
    }
}
