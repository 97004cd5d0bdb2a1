-- Buyer ratings (one per completed order, immutable; the shop may reply once) and the nightly
-- scoring: versioned score rules, immutable per-day snapshots, daily recommended shops.
CREATE TABLE ratings (
    id BIGSERIAL PRIMARY KEY,
    order_id BIGINT NOT NULL UNIQUE REFERENCES orders(id),
    shop_id BIGINT NOT NULL REFERENCES shops(id),
    buyer_id BIGINT NOT NULL REFERENCES users(id),
    described BIGINT NOT NULL CHECK (described BETWEEN 1 AND 5),
    service BIGINT NOT NULL CHECK (service BETWEEN 1 AND 5),
    logistics BIGINT NOT NULL CHECK (logistics BETWEEN 1 AND 5),
    body TEXT NOT NULL,
    photo_media_ids TEXT NOT NULL DEFAULT '',
    -- Calendar month in platform time (YYYY-MM) and the rating's place among this buyer's
    -- ratings of this shop in that month (1, 2, …): the DSR counts those with seq <= the cap.
    month TEXT NOT NULL,
    seq BIGINT NOT NULL CHECK (seq >= 1),
    reply TEXT NOT NULL DEFAULT '',
    replied_by BIGINT REFERENCES users(id),
    replied_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX ratings_shop ON ratings (shop_id, created_at);
CREATE INDEX ratings_created ON ratings (created_at);
CREATE UNIQUE INDEX ratings_cap ON ratings (buyer_id, shop_id, month, seq);

-- Which products a rating is about (the distinct products of its order), with the "as
-- described" stars copied for the product page's histogram.
CREATE TABLE rating_products (
    product_id BIGINT NOT NULL REFERENCES products(id),
    rating_id BIGINT NOT NULL REFERENCES ratings(id),
    described BIGINT NOT NULL,
    PRIMARY KEY (product_id, rating_id)
);

-- Versioned scoring configuration: every weight, window and threshold. The newest row is in
-- force; old rows stay so any snapshot can be recomputed with the rules it was made with.
CREATE TABLE score_rules (
    id BIGSERIAL PRIMARY KEY,
    params TEXT NOT NULL,
    note TEXT NOT NULL,
    created_by BIGINT REFERENCES users(id),
    created_at TIMESTAMP NOT NULL
);
INSERT INTO score_rules (params, note, created_by, created_at) VALUES ('{"rating_days":15,"dsr_window_days":180,"dsr_monthly_cap":3,"window_days":90,"lag_from_days":15,"lag_to_days":104,"half_life_days":30.0,"min_valid_orders":30,"valid_order_min_fen":200,"smoothing_m":30.0,"points_min":3.0,"points_max":5.0,"weight_product":0.5,"weight_logistics":0.15,"weight_service":0.35,"bad_review_max_stars":2,"ship_credit":[[24,1.0],[36,0.6],[48,0.3]],"tier_boost":4.8,"tier_restricted":4.3,"tier_barred":4.0,"tier_clearance":3.2,"clearance_days":14,"recommend_per_category":2,"recommend_recent_days":30,"authorize_min_score":4.0}', '默认评分规则 / default scoring rules', NULL, CURRENT_TIMESTAMP);

-- One immutable row per shop and platform day.
CREATE TABLE dsr_snapshots (
    id BIGSERIAL PRIMARY KEY,
    shop_id BIGINT NOT NULL REFERENCES shops(id),
    day TEXT NOT NULL,
    rule_version BIGINT NOT NULL REFERENCES score_rules(id),
    category_id BIGINT NOT NULL REFERENCES categories(id),
    rating_count BIGINT NOT NULL,
    described DOUBLE PRECISION,
    service DOUBLE PRECISION,
    logistics DOUBLE PRECISION,
    described_vs DOUBLE PRECISION,
    service_vs DOUBLE PRECISION,
    logistics_vs DOUBLE PRECISION,
    valid_orders BIGINT NOT NULL,
    raw_score DOUBLE PRECISION,
    score DOUBLE PRECISION,
    product_points DOUBLE PRECISION,
    logistics_points DOUBLE PRECISION,
    service_points DOUBLE PRECISION,
    metrics TEXT NOT NULL,
    tier TEXT NOT NULL,
    low_days BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (shop_id, day)
);
CREATE INDEX dsr_snapshots_day ON dsr_snapshots (day, category_id);

CREATE TABLE dsr_recommendations (
    day TEXT NOT NULL,
    category_id BIGINT NOT NULL REFERENCES categories(id),
    rank BIGINT NOT NULL,
    shop_id BIGINT NOT NULL REFERENCES shops(id),
    score DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (day, category_id, rank)
);

-- The scoring windows read orders by delivery and refunds by request time.
CREATE INDEX orders_delivered ON orders (delivered_at);
CREATE INDEX orders_paid ON orders (paid_at);
CREATE INDEX refunds_requested ON refunds (requested_at);
CREATE INDEX rating_products_rating ON rating_products (rating_id);
