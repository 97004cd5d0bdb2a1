-- Governance: the violation type catalogue (versioned: an edit adds a row with the next
-- version and retires the old one, so every recorded violation keeps the exact type it was
-- judged under), penalty nodes as data, violations with their points, penalties with a start
-- and an end, the products each violation delisted (so a revocation relists exactly those),
-- and appeals (one per violation).
CREATE TABLE violation_types (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    code TEXT NOT NULL,
    version BIGINT NOT NULL,
    name_zh TEXT NOT NULL,
    name_en TEXT NOT NULL,
    track TEXT NOT NULL CHECK (track IN ('general', 'serious')),
    points BIGINT NOT NULL CHECK (points >= 0),
    delists_product BOOLEAN NOT NULL,
    evidence_required BOOLEAN NOT NULL,
    active BOOLEAN NOT NULL,
    created_by BIGINT REFERENCES users(id),
    created_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX violation_types_code_version ON violation_types (code, version);
-- At most one version of a code is in force.
CREATE UNIQUE INDEX violation_types_one_active ON violation_types (code) WHERE active;

CREATE TABLE penalty_nodes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    track TEXT NOT NULL CHECK (track IN ('general', 'serious')),
    threshold BIGINT NOT NULL CHECK (threshold > 0),
    -- 0: reached once at `threshold`; n: reached again every n points after it.
    repeat_every BIGINT NOT NULL DEFAULT 0 CHECK (repeat_every >= 0),
    action TEXT NOT NULL CHECK (action IN ('restrict', 'close', 'clear')),
    days BIGINT NOT NULL DEFAULT 0 CHECK (days >= 0),
    delist_all BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE UNIQUE INDEX penalty_nodes_track_threshold ON penalty_nodes (track, threshold);

CREATE TABLE violations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    shop_id BIGINT NOT NULL REFERENCES shops(id),
    type_id BIGINT NOT NULL REFERENCES violation_types(id),
    track TEXT NOT NULL CHECK (track IN ('general', 'serious')),
    points BIGINT NOT NULL,
    -- The calendar year (platform time) whose points this deduction counts toward.
    year BIGINT NOT NULL,
    -- The shop's points on this track this year just before the deduction.
    points_before BIGINT NOT NULL,
    product_id BIGINT REFERENCES products(id),
    order_id BIGINT REFERENCES orders(id),
    description TEXT NOT NULL,
    evidence_media_ids TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL CHECK (source IN ('moderator', 'rescan')),
    recorded_by BIGINT REFERENCES users(id),
    status TEXT NOT NULL CHECK (status IN ('active', 'appealed', 'upheld', 'revoked')),
    appeal_deadline TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
CREATE INDEX violations_shop ON violations (shop_id, year, track);
CREATE INDEX violations_created ON violations (created_at);

CREATE TABLE penalties (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    shop_id BIGINT NOT NULL REFERENCES shops(id),
    violation_id BIGINT REFERENCES violations(id),
    kind TEXT NOT NULL CHECK (kind IN ('restrict', 'close', 'clear', 'suspend')),
    node_threshold BIGINT,
    delist_all BOOLEAN NOT NULL DEFAULT FALSE,
    reason TEXT NOT NULL,
    starts_at TIMESTAMP NOT NULL,
    -- NULL: until lifted by hand (suspension) or for good (clearance).
    ends_at TIMESTAMP,
    status TEXT NOT NULL CHECK (status IN ('active', 'ended', 'lifted', 'revoked')),
    created_by BIGINT REFERENCES users(id),
    created_at TIMESTAMP NOT NULL,
    ended_at TIMESTAMP
);
CREATE INDEX penalties_shop ON penalties (shop_id, status);
CREATE INDEX penalties_due ON penalties (status, ends_at);
CREATE INDEX penalties_violation ON penalties (violation_id);

CREATE TABLE violation_delistings (
    violation_id BIGINT NOT NULL REFERENCES violations(id),
    product_id BIGINT NOT NULL REFERENCES products(id),
    PRIMARY KEY (violation_id, product_id)
);
CREATE INDEX violation_delistings_product ON violation_delistings (product_id);

CREATE TABLE appeals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    violation_id BIGINT NOT NULL UNIQUE REFERENCES violations(id),
    shop_id BIGINT NOT NULL REFERENCES shops(id),
    body TEXT NOT NULL,
    evidence_media_ids TEXT NOT NULL DEFAULT '',
    submitted_by BIGINT NOT NULL REFERENCES users(id),
    status TEXT NOT NULL CHECK (status IN ('pending', 'upheld', 'revoked')),
    decided_by BIGINT REFERENCES users(id),
    decision_reason TEXT NOT NULL DEFAULT '',
    deadline TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL,
    decided_at TIMESTAMP
);
CREATE INDEX appeals_status ON appeals (status, created_at);

-- Days a merchant has to appeal after the notice, and days moderators have to decide one.
INSERT INTO rule_params (key, value) VALUES ('appeal_days', 7);
INSERT INTO rule_params (key, value) VALUES ('appeal_review_days', 3);

INSERT INTO violation_types (code, version, name_zh, name_en, track, points, delists_product, evidence_required, active, created_by, created_at) VALUES
    ('false_advertising', 1, '虚假宣传', 'False advertising', 'general', 4, TRUE, TRUE, TRUE, NULL, CURRENT_TIMESTAMP),
    ('prohibited_terms', 1, '使用违禁词', 'Prohibited terms in a listing', 'general', 2, TRUE, FALSE, TRUE, NULL, CURRENT_TIMESTAMP),
    ('missing_qualification', 1, '缺少经营资质', 'Missing qualification', 'general', 6, TRUE, TRUE, TRUE, NULL, CURRENT_TIMESTAMP),
    ('fake_shipping', 1, '虚假发货', 'Fake shipping', 'general', 4, FALSE, TRUE, TRUE, NULL, CURRENT_TIMESTAMP),
    ('refuse_after_sale', 1, '拒绝售后', 'Refusing after-sale service', 'general', 4, FALSE, TRUE, TRUE, NULL, CURRENT_TIMESTAMP),
    ('abusive_service', 1, '辱骂消费者', 'Abusive customer service', 'general', 6, FALSE, TRUE, TRUE, NULL, CURRENT_TIMESTAMP),
    ('off_platform_trading', 1, '站外交易', 'Off-platform trading', 'serious', 12, FALSE, TRUE, TRUE, NULL, CURRENT_TIMESTAMP),
    ('order_brushing', 1, '刷单炒信', 'Order brushing', 'serious', 12, FALSE, TRUE, TRUE, NULL, CURRENT_TIMESTAMP),
    ('counterfeit', 1, '出售假冒商品', 'Selling counterfeit goods', 'serious', 24, TRUE, TRUE, TRUE, NULL, CURRENT_TIMESTAMP),
    ('prohibited_goods', 1, '发布禁售商品', 'Listing prohibited goods', 'serious', 12, TRUE, TRUE, TRUE, NULL, CURRENT_TIMESTAMP),
    ('fraud', 1, '欺诈消费者', 'Defrauding buyers', 'serious', 48, FALSE, TRUE, TRUE, NULL, CURRENT_TIMESTAMP);

INSERT INTO penalty_nodes (track, threshold, repeat_every, action, days, delist_all) VALUES
    ('general', 12, 12, 'restrict', 7, FALSE),
    ('serious', 12, 0, 'restrict', 7, FALSE),
    ('serious', 24, 0, 'restrict', 14, TRUE),
    ('serious', 36, 0, 'close', 21, FALSE),
    ('serious', 48, 0, 'clear', 0, FALSE);

-- A shop's status is derived from its penalties in force from now on: shops already
-- restricted, suspended or cleared get the penalty that keeps them so.
INSERT INTO penalties (shop_id, violation_id, kind, node_threshold, delist_all, reason, starts_at, ends_at, status, created_by, created_at)
SELECT id, NULL,
       CASE status WHEN 'cleared' THEN 'clear' WHEN 'suspended' THEN 'suspend' ELSE 'restrict' END,
       NULL, FALSE, 'status before penalties were recorded', updated_at,
       CASE WHEN status = 'restricted' THEN restricted_until ELSE NULL END,
       'active', NULL, updated_at
FROM shops WHERE status IN ('cleared', 'suspended', 'restricted');
