-- Orders: address book, cart, checkouts (the idempotency key), orders with their lines and
-- timeline, payments and the provider's callback events. Money in 分 (integer) everywhere.
CREATE TABLE addresses (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id),
    recipient TEXT NOT NULL,
    phone TEXT NOT NULL,
    province TEXT NOT NULL,
    city TEXT NOT NULL,
    district TEXT NOT NULL,
    detail TEXT NOT NULL,
    is_default BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX addresses_user ON addresses (user_id);

-- owner: 'u<user id>' for an account, 'v<visitor id>' for an anonymous visitor (carried over
-- to the account at the first cart access after login).
CREATE TABLE cart_items (
    owner TEXT NOT NULL,
    sku_id BIGINT NOT NULL REFERENCES skus(id) ON DELETE CASCADE,
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    added_at TIMESTAMP NOT NULL,
    PRIMARY KEY (owner, sku_id)
);

CREATE TABLE checkouts (
    id BIGSERIAL PRIMARY KEY,
    buyer_id BIGINT NOT NULL REFERENCES users(id),
    idem_key TEXT NOT NULL,
    total_fen BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (buyer_id, idem_key)
);

CREATE TABLE orders (
    id BIGSERIAL PRIMARY KEY,
    order_no TEXT NOT NULL UNIQUE,
    checkout_id BIGINT NOT NULL REFERENCES checkouts(id),
    buyer_id BIGINT NOT NULL REFERENCES users(id),
    shop_id BIGINT NOT NULL REFERENCES shops(id),
    status TEXT NOT NULL CHECK (status IN ('pending_payment', 'paid', 'shipped', 'delivered', 'completed', 'cancelled', 'closed')),
    items_fen BIGINT NOT NULL CHECK (items_fen >= 0),
    shipping_fen BIGINT NOT NULL DEFAULT 0,
    total_fen BIGINT NOT NULL CHECK (total_fen >= 0),
    refunded_fen BIGINT NOT NULL DEFAULT 0,
    recipient TEXT NOT NULL,
    phone TEXT NOT NULL,
    region TEXT NOT NULL,
    address_detail TEXT NOT NULL,
    buyer_note TEXT NOT NULL DEFAULT '',
    carrier TEXT,
    tracking_no TEXT,
    cancel_reason TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    pay_deadline TIMESTAMP NOT NULL,
    paid_at TIMESTAMP,
    shipped_at TIMESTAMP,
    delivered_at TIMESTAMP,
    completed_at TIMESTAMP,
    cancelled_at TIMESTAMP,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX orders_buyer ON orders (buyer_id, id);
CREATE INDEX orders_shop ON orders (shop_id, id);
CREATE INDEX orders_shop_status ON orders (shop_id, status, id);
CREATE INDEX orders_checkout ON orders (checkout_id);
CREATE INDEX orders_status_deadline ON orders (status, pay_deadline);
CREATE INDEX orders_status_shipped ON orders (status, shipped_at);
CREATE INDEX orders_status_delivered ON orders (status, delivered_at);
-- The merchant overview sums a shop's paid orders per platform day.
CREATE INDEX orders_shop_paid ON orders (shop_id, paid_at);

-- A line keeps what the buyer saw (title, variant, price) at checkout. restocked: its quantity
-- went back to the SKU's stock (cancellation, or a return the merchant restocked), at most once.
CREATE TABLE order_lines (
    id BIGSERIAL PRIMARY KEY,
    order_id BIGINT NOT NULL REFERENCES orders(id),
    sku_id BIGINT NOT NULL REFERENCES skus(id),
    product_id BIGINT NOT NULL REFERENCES products(id),
    title TEXT NOT NULL,
    sku_label TEXT NOT NULL,
    cover_media_id BIGINT,
    price_fen BIGINT NOT NULL CHECK (price_fen >= 0),
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    restocked BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX order_lines_order ON order_lines (order_id);
CREATE INDEX order_lines_sku ON order_lines (sku_id);

-- The timeline of an order: one row per transition (actor NULL = the platform's jobs).
CREATE TABLE order_events (
    id BIGSERIAL PRIMARY KEY,
    order_id BIGINT NOT NULL REFERENCES orders(id),
    kind TEXT NOT NULL,
    actor_user_id BIGINT REFERENCES users(id),
    note TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX order_events_order ON order_events (order_id, id);

-- One row per order in a payment intent (one intent may pay several orders of a checkout).
CREATE TABLE payments (
    id BIGSERIAL PRIMARY KEY,
    intent TEXT NOT NULL,
    provider TEXT NOT NULL,
    order_id BIGINT NOT NULL REFERENCES orders(id),
    buyer_id BIGINT NOT NULL REFERENCES users(id),
    amount_fen BIGINT NOT NULL CHECK (amount_fen >= 0),
    status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'refunded')),
    created_at TIMESTAMP NOT NULL,
    settled_at TIMESTAMP,
    UNIQUE (intent, order_id)
);
CREATE INDEX payments_order ON payments (order_id);

-- The provider's callbacks: a repeated event id is recognised and changes nothing.
CREATE TABLE payment_events (
    id BIGSERIAL PRIMARY KEY,
    provider TEXT NOT NULL,
    event_id TEXT NOT NULL,
    intent TEXT NOT NULL,
    outcome TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL,
    UNIQUE (provider, event_id)
);
