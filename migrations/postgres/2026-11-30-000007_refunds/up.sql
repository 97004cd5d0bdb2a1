-- After-sale: refund requests (refund only, or return and refund) with the merchant's decision,
-- the automatic approval of unanswered requests, and the reason category the experience score
-- counts (quality / logistics / other).
CREATE TABLE refunds (
    id BIGSERIAL PRIMARY KEY,
    order_id BIGINT NOT NULL REFERENCES orders(id),
    shop_id BIGINT NOT NULL REFERENCES shops(id),
    buyer_id BIGINT NOT NULL REFERENCES users(id),
    kind TEXT NOT NULL CHECK (kind IN ('refund_only', 'return_refund')),
    reason TEXT NOT NULL,
    reason_category TEXT NOT NULL CHECK (reason_category IN ('quality', 'logistics', 'other')),
    note TEXT NOT NULL DEFAULT '',
    photo_media_ids TEXT NOT NULL DEFAULT '',
    amount_fen BIGINT NOT NULL CHECK (amount_fen > 0),
    status TEXT NOT NULL CHECK (status IN ('requested', 'awaiting_return', 'refunded', 'rejected')),
    respond_by TIMESTAMP NOT NULL,
    return_address TEXT NOT NULL DEFAULT '',
    return_tracking_no TEXT,
    reject_reason TEXT NOT NULL DEFAULT '',
    restocked BOOLEAN NOT NULL DEFAULT FALSE,
    auto_approved BOOLEAN NOT NULL DEFAULT FALSE,
    decided_by BIGINT REFERENCES users(id),
    requested_at TIMESTAMP NOT NULL,
    decided_at TIMESTAMP,
    completed_at TIMESTAMP
);
CREATE INDEX refunds_order ON refunds (order_id, id);
CREATE INDEX refunds_shop_status ON refunds (shop_id, status, id);
CREATE INDEX refunds_status_respond ON refunds (status, respond_by);
-- At most one open request per order: a second one while the first is open is refused.
CREATE UNIQUE INDEX refunds_one_open ON refunds (order_id) WHERE status IN ('requested', 'awaiting_return');
