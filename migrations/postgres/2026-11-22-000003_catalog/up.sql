-- Catalog (products, SKUs, images) and the first part of the rules engine (rule-set versions,
-- prohibited terms, numeric parameters, recorded listing checks).
CREATE TABLE products (
    id BIGSERIAL PRIMARY KEY,
    shop_id BIGINT NOT NULL REFERENCES shops(id),
    category_id BIGINT NOT NULL REFERENCES categories(id),
    title TEXT NOT NULL,
    subtitle TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    attributes TEXT NOT NULL DEFAULT '',
    variant_spec TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL CHECK (status IN ('draft', 'pending_review', 'listed', 'needs_changes', 'rejected', 'delisted', 'removed')),
    status_reason TEXT NOT NULL DEFAULT '',
    delisted_by_platform BOOLEAN NOT NULL DEFAULT FALSE,
    price_min BIGINT,
    price_max BIGINT,
    sales_count BIGINT NOT NULL DEFAULT 0,
    cover_media_id BIGINT REFERENCES media(id),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    listed_at TIMESTAMP
);
CREATE INDEX products_shop_status ON products (shop_id, status);
CREATE INDEX products_status_listed ON products (status, listed_at);

CREATE TABLE skus (
    id BIGSERIAL PRIMARY KEY,
    product_id BIGINT NOT NULL REFERENCES products(id) ON DELETE CASCADE,
    shop_id BIGINT NOT NULL REFERENCES shops(id),
    code TEXT NOT NULL,
    attrs TEXT NOT NULL DEFAULT '',
    price_fen BIGINT NOT NULL CHECK (price_fen >= 0),
    list_price_fen BIGINT,
    stock BIGINT NOT NULL CHECK (stock >= 0),
    position BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (shop_id, code)
);
CREATE INDEX skus_product ON skus (product_id);

CREATE TABLE product_images (
    id BIGSERIAL PRIMARY KEY,
    product_id BIGINT NOT NULL REFERENCES products(id) ON DELETE CASCADE,
    media_id BIGINT NOT NULL REFERENCES media(id),
    thumb_media_id BIGINT REFERENCES media(id),
    position BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX product_images_product ON product_images (product_id, position);

CREATE TABLE rule_sets (
    id BIGSERIAL PRIMARY KEY,
    note TEXT NOT NULL,
    created_by BIGINT REFERENCES users(id),
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE prohibited_terms (
    id BIGSERIAL PRIMARY KEY,
    term TEXT NOT NULL,
    match_type TEXT NOT NULL CHECK (match_type IN ('substring', 'word', 'regex')),
    scope TEXT NOT NULL CHECK (scope IN ('all', 'only', 'except')),
    scope_category_id BIGINT REFERENCES categories(id),
    severity TEXT NOT NULL CHECK (severity IN ('block', 'review', 'warn')),
    legal_basis TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE rule_params (
    key TEXT PRIMARY KEY NOT NULL,
    value BIGINT NOT NULL
);

CREATE TABLE listing_checks (
    id BIGSERIAL PRIMARY KEY,
    product_id BIGINT NOT NULL REFERENCES products(id) ON DELETE CASCADE,
    rule_set_id BIGINT NOT NULL REFERENCES rule_sets(id),
    outcome TEXT NOT NULL,
    hits TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX listing_checks_product ON listing_checks (product_id);

-- Default rule set, version 1. Medical claims are allowed only in the health category.
INSERT INTO rule_sets (note, created_by, created_at) VALUES ('默认规则集 / default rule set', NULL, (now() AT TIME ZONE 'UTC'));
INSERT INTO prohibited_terms (term, match_type, scope, scope_category_id, severity, legal_basis, created_at) VALUES ('最', 'substring', 'all', NULL, 'review', '《广告法》第九条第三项', (now() AT TIME ZONE 'UTC'));
INSERT INTO prohibited_terms (term, match_type, scope, scope_category_id, severity, legal_basis, created_at) VALUES ('最佳', 'substring', 'all', NULL, 'block', '《广告法》第九条第三项', (now() AT TIME ZONE 'UTC'));
INSERT INTO prohibited_terms (term, match_type, scope, scope_category_id, severity, legal_basis, created_at) VALUES ('最低价', 'substring', 'all', NULL, 'block', '《广告法》第九条第三项', (now() AT TIME ZONE 'UTC'));
INSERT INTO prohibited_terms (term, match_type, scope, scope_category_id, severity, legal_basis, created_at) VALUES ('最高级', 'substring', 'all', NULL, 'block', '《广告法》第九条第三项', (now() AT TIME ZONE 'UTC'));
INSERT INTO prohibited_terms (term, match_type, scope, scope_category_id, severity, legal_basis, created_at) VALUES ('第一', 'substring', 'all', NULL, 'block', '《广告法》第九条第三项', (now() AT TIME ZONE 'UTC'));
INSERT INTO prohibited_terms (term, match_type, scope, scope_category_id, severity, legal_basis, created_at) VALUES ('NO.1', 'word', 'all', NULL, 'block', '《广告法》第九条第三项', (now() AT TIME ZONE 'UTC'));
INSERT INTO prohibited_terms (term, match_type, scope, scope_category_id, severity, legal_basis, created_at) VALUES ('No. 1', 'substring', 'all', NULL, 'block', '《广告法》第九条第三项', (now() AT TIME ZONE 'UTC'));
INSERT INTO prohibited_terms (term, match_type, scope, scope_category_id, severity, legal_basis, created_at) VALUES ('唯一', 'substring', 'all', NULL, 'block', '《广告法》第九条第三项', (now() AT TIME ZONE 'UTC'));
INSERT INTO prohibited_terms (term, match_type, scope, scope_category_id, severity, legal_basis, created_at) VALUES ('国家级', 'substring', 'all', NULL, 'block', '《广告法》第九条第三项', (now() AT TIME ZONE 'UTC'));
INSERT INTO prohibited_terms (term, match_type, scope, scope_category_id, severity, legal_basis, created_at) VALUES ('世界级', 'substring', 'all', NULL, 'block', '《广告法》第九条第三项', (now() AT TIME ZONE 'UTC'));
INSERT INTO prohibited_terms (term, match_type, scope, scope_category_id, severity, legal_basis, created_at) VALUES ('顶级', 'substring', 'all', NULL, 'block', '《广告法》第九条第三项', (now() AT TIME ZONE 'UTC'));
INSERT INTO prohibited_terms (term, match_type, scope, scope_category_id, severity, legal_basis, created_at) VALUES ('极品', 'substring', 'all', NULL, 'block', '《广告法》第九条第三项', (now() AT TIME ZONE 'UTC'));
INSERT INTO prohibited_terms (term, match_type, scope, scope_category_id, severity, legal_basis, created_at) VALUES ('绝对', 'substring', 'all', NULL, 'block', '《广告法》第九条第三项', (now() AT TIME ZONE 'UTC'));
INSERT INTO prohibited_terms (term, match_type, scope, scope_category_id, severity, legal_basis, created_at) VALUES ('万能', 'substring', 'all', NULL, 'block', '《广告法》第九条第三项', (now() AT TIME ZONE 'UTC'));
INSERT INTO prohibited_terms (term, match_type, scope, scope_category_id, severity, legal_basis, created_at) VALUES ('永久', 'substring', 'all', NULL, 'review', '《广告法》第九条第三项', (now() AT TIME ZONE 'UTC'));
INSERT INTO prohibited_terms (term, match_type, scope, scope_category_id, severity, legal_basis, created_at) VALUES ('100%有效', 'substring', 'all', NULL, 'block', '《广告法》第九条第三项', (now() AT TIME ZONE 'UTC'));
INSERT INTO prohibited_terms (term, match_type, scope, scope_category_id, severity, legal_basis, created_at) VALUES ('best', 'word', 'all', NULL, 'block', 'Advertising Law art. 9(3): absolute claims', (now() AT TIME ZONE 'UTC'));
INSERT INTO prohibited_terms (term, match_type, scope, scope_category_id, severity, legal_basis, created_at) VALUES ('number one', 'word', 'all', NULL, 'block', 'Advertising Law art. 9(3): absolute claims', (now() AT TIME ZONE 'UTC'));
INSERT INTO prohibited_terms (term, match_type, scope, scope_category_id, severity, legal_basis, created_at) VALUES ('the only', 'word', 'all', NULL, 'review', 'Advertising Law art. 9(3): absolute claims', (now() AT TIME ZONE 'UTC'));
INSERT INTO prohibited_terms (term, match_type, scope, scope_category_id, severity, legal_basis, created_at) VALUES ('world-class', 'word', 'all', NULL, 'block', 'Advertising Law art. 9(3): absolute claims', (now() AT TIME ZONE 'UTC'));
INSERT INTO prohibited_terms (term, match_type, scope, scope_category_id, severity, legal_basis, created_at) VALUES ('lowest price', 'word', 'all', NULL, 'block', 'Advertising Law art. 9(3): absolute claims', (now() AT TIME ZONE 'UTC'));
INSERT INTO prohibited_terms (term, match_type, scope, scope_category_id, severity, legal_basis, created_at) VALUES ('高仿', 'substring', 'all', NULL, 'block', '《电子商务法》第十三条、《商标法》第五十七条（假冒商品）', (now() AT TIME ZONE 'UTC'));
INSERT INTO prohibited_terms (term, match_type, scope, scope_category_id, severity, legal_basis, created_at) VALUES ('原单', 'substring', 'all', NULL, 'review', '《商标法》第五十七条（疑似假冒）', (now() AT TIME ZONE 'UTC'));
INSERT INTO prohibited_terms (term, match_type, scope, scope_category_id, severity, legal_basis, created_at) VALUES ('replica', 'word', 'all', NULL, 'block', 'Trademark Law art. 57: counterfeit goods', (now() AT TIME ZONE 'UTC'));
INSERT INTO prohibited_terms (term, match_type, scope, scope_category_id, severity, legal_basis, created_at) VALUES ('包治百病', 'substring', 'except', (SELECT id FROM categories WHERE slug = 'health'), 'block', '《广告法》第十七条（非医疗产品不得涉及疾病治疗功能）', (now() AT TIME ZONE 'UTC'));
INSERT INTO prohibited_terms (term, match_type, scope, scope_category_id, severity, legal_basis, created_at) VALUES ('治疗', 'substring', 'except', (SELECT id FROM categories WHERE slug = 'health'), 'review', '《广告法》第十七条（非医疗产品不得涉及疾病治疗功能）', (now() AT TIME ZONE 'UTC'));
INSERT INTO prohibited_terms (term, match_type, scope, scope_category_id, severity, legal_basis, created_at) VALUES ('根治', 'substring', 'except', (SELECT id FROM categories WHERE slug = 'health'), 'block', '《广告法》第十七条（非医疗产品不得涉及疾病治疗功能）', (now() AT TIME ZONE 'UTC'));
INSERT INTO prohibited_terms (term, match_type, scope, scope_category_id, severity, legal_basis, created_at) VALUES ('降血压', 'substring', 'except', (SELECT id FROM categories WHERE slug = 'health'), 'block', '《广告法》第十七条（非医疗产品不得涉及疾病治疗功能）', (now() AT TIME ZONE 'UTC'));
INSERT INTO prohibited_terms (term, match_type, scope, scope_category_id, severity, legal_basis, created_at) VALUES ('降血糖', 'substring', 'except', (SELECT id FROM categories WHERE slug = 'health'), 'block', '《广告法》第十七条（非医疗产品不得涉及疾病治疗功能）', (now() AT TIME ZONE 'UTC'));
INSERT INTO prohibited_terms (term, match_type, scope, scope_category_id, severity, legal_basis, created_at) VALUES ('抗癌', 'substring', 'except', (SELECT id FROM categories WHERE slug = 'health'), 'block', '《广告法》第十七条（非医疗产品不得涉及疾病治疗功能）', (now() AT TIME ZONE 'UTC'));
INSERT INTO prohibited_terms (term, match_type, scope, scope_category_id, severity, legal_basis, created_at) VALUES ('cure', 'word', 'except', (SELECT id FROM categories WHERE slug = 'health'), 'block', 'Advertising Law art. 17: no medical claims outside medical goods', (now() AT TIME ZONE 'UTC'));
INSERT INTO prohibited_terms (term, match_type, scope, scope_category_id, severity, legal_basis, created_at) VALUES ('cures', 'word', 'except', (SELECT id FROM categories WHERE slug = 'health'), 'block', 'Advertising Law art. 17: no medical claims outside medical goods', (now() AT TIME ZONE 'UTC'));
INSERT INTO prohibited_terms (term, match_type, scope, scope_category_id, severity, legal_basis, created_at) VALUES ('\d{2,3}天(瘦|减)\d+斤', 'regex', 'all', NULL, 'block', '《广告法》第二十八条（虚假宣传）', (now() AT TIME ZONE 'UTC'));
INSERT INTO rule_params (key, value) VALUES ('price_ceiling_fen', 100000000);
INSERT INTO rule_params (key, value) VALUES ('discount_floor_percent', 10);
