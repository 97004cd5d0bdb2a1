-- Buyers' complaints about a shop (optionally about one order): the shop may answer once, a
-- moderator rules whether the merchant was at fault. The experience score counts both the
-- complaints and the at-fault rulings.
CREATE TABLE complaints (
    id BIGSERIAL PRIMARY KEY,
    shop_id BIGINT NOT NULL REFERENCES shops(id),
    buyer_id BIGINT NOT NULL REFERENCES users(id),
    order_id BIGINT REFERENCES orders(id),
    reason TEXT NOT NULL,
    body TEXT NOT NULL,
    evidence_media_ids TEXT NOT NULL DEFAULT '',
    merchant_reply TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL CHECK (status IN ('open', 'ruled')),
    merchant_at_fault BOOLEAN,
    ruling_note TEXT NOT NULL DEFAULT '',
    ruled_by BIGINT REFERENCES users(id),
    created_at TIMESTAMP NOT NULL,
    replied_at TIMESTAMP,
    ruled_at TIMESTAMP
);
CREATE INDEX complaints_shop ON complaints (shop_id, id);
CREATE INDEX complaints_status ON complaints (status, id);
CREATE INDEX complaints_order ON complaints (order_id);
-- One open complaint per order.
CREATE UNIQUE INDEX complaints_one_open ON complaints (order_id) WHERE status = 'open';
