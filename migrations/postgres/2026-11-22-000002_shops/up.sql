-- 号店一体: categories, shops bound one-to-one to their official account, qualifications,
-- staff, authorized accounts, follows.
CREATE TABLE categories (
    id BIGSERIAL PRIMARY KEY,
    parent_id BIGINT REFERENCES categories(id),
    slug TEXT NOT NULL UNIQUE,
    name_zh TEXT NOT NULL,
    name_en TEXT NOT NULL,
    deposit_fen BIGINT NOT NULL DEFAULT 0,
    required_qualifications TEXT NOT NULL DEFAULT '',
    sort_order BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX categories_parent ON categories (parent_id);

CREATE TABLE shops (
    id BIGSERIAL PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    logo_media_id BIGINT REFERENCES media(id),
    main_category_id BIGINT NOT NULL REFERENCES categories(id),
    entity_type TEXT NOT NULL CHECK (entity_type IN ('individual', 'enterprise', 'brand_flagship')),
    official_user_id BIGINT NOT NULL UNIQUE REFERENCES users(id),
    status TEXT NOT NULL CHECK (status IN ('active', 'restricted', 'suspended', 'cleared')),
    restricted_until TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE shop_qualifications (
    id BIGSERIAL PRIMARY KEY,
    shop_id BIGINT NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('business_license', 'food_license', 'cosmetics_filing', 'brand_authorization', 'medical_device')),
    number TEXT NOT NULL,
    document_media_id BIGINT REFERENCES media(id),
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX shop_qualifications_shop ON shop_qualifications (shop_id);

CREATE TABLE shop_staff (
    shop_id BIGINT NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('operator', 'customer_service')),
    added_by BIGINT REFERENCES users(id),
    added_at TIMESTAMP NOT NULL,
    PRIMARY KEY (shop_id, user_id)
);
CREATE INDEX shop_staff_user ON shop_staff (user_id);

CREATE TABLE shop_authorizations (
    id BIGSERIAL PRIMARY KEY,
    shop_id BIGINT NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    authorized_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
CREATE UNIQUE INDEX shop_authorizations_live ON shop_authorizations (shop_id, user_id) WHERE revoked_at IS NULL;
CREATE INDEX shop_authorizations_user ON shop_authorizations (user_id);

CREATE TABLE follows (
    follower_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    followee_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (follower_id, followee_id),
    CHECK (follower_id <> followee_id)
);
CREATE INDEX follows_followee ON follows (followee_id);

-- The default category tree (admins edit it later).
INSERT INTO categories (parent_id, slug, name_zh, name_en, deposit_fen, required_qualifications, sort_order, created_at) VALUES (NULL, 'apparel', '服饰', 'Apparel', 200000, '', 0, (now() AT TIME ZONE 'UTC'));
INSERT INTO categories (parent_id, slug, name_zh, name_en, deposit_fen, required_qualifications, sort_order, created_at) VALUES ((SELECT id FROM categories WHERE slug = 'apparel'), 'apparel-women', '女装', 'Women''s clothing', 200000, '', 1, (now() AT TIME ZONE 'UTC'));
INSERT INTO categories (parent_id, slug, name_zh, name_en, deposit_fen, required_qualifications, sort_order, created_at) VALUES ((SELECT id FROM categories WHERE slug = 'apparel'), 'apparel-men', '男装', 'Men''s clothing', 200000, '', 2, (now() AT TIME ZONE 'UTC'));
INSERT INTO categories (parent_id, slug, name_zh, name_en, deposit_fen, required_qualifications, sort_order, created_at) VALUES ((SELECT id FROM categories WHERE slug = 'apparel'), 'apparel-shoes', '鞋靴', 'Shoes', 200000, '', 3, (now() AT TIME ZONE 'UTC'));
INSERT INTO categories (parent_id, slug, name_zh, name_en, deposit_fen, required_qualifications, sort_order, created_at) VALUES (NULL, 'cosmetics', '美妆', 'Cosmetics', 500000, 'cosmetics_filing', 4, (now() AT TIME ZONE 'UTC'));
INSERT INTO categories (parent_id, slug, name_zh, name_en, deposit_fen, required_qualifications, sort_order, created_at) VALUES ((SELECT id FROM categories WHERE slug = 'cosmetics'), 'cosmetics-skincare', '护肤', 'Skincare', 500000, 'cosmetics_filing', 5, (now() AT TIME ZONE 'UTC'));
INSERT INTO categories (parent_id, slug, name_zh, name_en, deposit_fen, required_qualifications, sort_order, created_at) VALUES ((SELECT id FROM categories WHERE slug = 'cosmetics'), 'cosmetics-makeup', '彩妆', 'Make-up', 500000, 'cosmetics_filing', 6, (now() AT TIME ZONE 'UTC'));
INSERT INTO categories (parent_id, slug, name_zh, name_en, deposit_fen, required_qualifications, sort_order, created_at) VALUES (NULL, 'food', '食品', 'Food', 400000, 'food_license', 7, (now() AT TIME ZONE 'UTC'));
INSERT INTO categories (parent_id, slug, name_zh, name_en, deposit_fen, required_qualifications, sort_order, created_at) VALUES ((SELECT id FROM categories WHERE slug = 'food'), 'food-snacks', '休闲零食', 'Snacks', 400000, 'food_license', 8, (now() AT TIME ZONE 'UTC'));
INSERT INTO categories (parent_id, slug, name_zh, name_en, deposit_fen, required_qualifications, sort_order, created_at) VALUES ((SELECT id FROM categories WHERE slug = 'food'), 'food-tea', '茶叶冲饮', 'Tea and drinks', 400000, 'food_license', 9, (now() AT TIME ZONE 'UTC'));
INSERT INTO categories (parent_id, slug, name_zh, name_en, deposit_fen, required_qualifications, sort_order, created_at) VALUES ((SELECT id FROM categories WHERE slug = 'food'), 'food-fresh', '生鲜果蔬', 'Fresh produce', 400000, 'food_license', 10, (now() AT TIME ZONE 'UTC'));
INSERT INTO categories (parent_id, slug, name_zh, name_en, deposit_fen, required_qualifications, sort_order, created_at) VALUES (NULL, 'electronics', '数码', 'Electronics', 1000000, '', 11, (now() AT TIME ZONE 'UTC'));
INSERT INTO categories (parent_id, slug, name_zh, name_en, deposit_fen, required_qualifications, sort_order, created_at) VALUES ((SELECT id FROM categories WHERE slug = 'electronics'), 'electronics-phones', '手机', 'Phones', 1000000, '', 12, (now() AT TIME ZONE 'UTC'));
INSERT INTO categories (parent_id, slug, name_zh, name_en, deposit_fen, required_qualifications, sort_order, created_at) VALUES ((SELECT id FROM categories WHERE slug = 'electronics'), 'electronics-audio', '耳机音箱', 'Audio', 500000, '', 13, (now() AT TIME ZONE 'UTC'));
INSERT INTO categories (parent_id, slug, name_zh, name_en, deposit_fen, required_qualifications, sort_order, created_at) VALUES ((SELECT id FROM categories WHERE slug = 'electronics'), 'electronics-accessories', '数码配件', 'Accessories', 200000, '', 14, (now() AT TIME ZONE 'UTC'));
INSERT INTO categories (parent_id, slug, name_zh, name_en, deposit_fen, required_qualifications, sort_order, created_at) VALUES (NULL, 'home', '家居', 'Home', 200000, '', 15, (now() AT TIME ZONE 'UTC'));
INSERT INTO categories (parent_id, slug, name_zh, name_en, deposit_fen, required_qualifications, sort_order, created_at) VALUES ((SELECT id FROM categories WHERE slug = 'home'), 'home-kitchen', '厨具', 'Kitchen', 200000, '', 16, (now() AT TIME ZONE 'UTC'));
INSERT INTO categories (parent_id, slug, name_zh, name_en, deposit_fen, required_qualifications, sort_order, created_at) VALUES ((SELECT id FROM categories WHERE slug = 'home'), 'home-textiles', '家纺', 'Home textiles', 200000, '', 17, (now() AT TIME ZONE 'UTC'));
INSERT INTO categories (parent_id, slug, name_zh, name_en, deposit_fen, required_qualifications, sort_order, created_at) VALUES (NULL, 'baby', '母婴', 'Mother and baby', 500000, '', 18, (now() AT TIME ZONE 'UTC'));
INSERT INTO categories (parent_id, slug, name_zh, name_en, deposit_fen, required_qualifications, sort_order, created_at) VALUES ((SELECT id FROM categories WHERE slug = 'baby'), 'baby-formula', '奶粉辅食', 'Formula and baby food', 1000000, 'food_license', 19, (now() AT TIME ZONE 'UTC'));
INSERT INTO categories (parent_id, slug, name_zh, name_en, deposit_fen, required_qualifications, sort_order, created_at) VALUES ((SELECT id FROM categories WHERE slug = 'baby'), 'baby-toys', '玩具', 'Toys', 300000, '', 20, (now() AT TIME ZONE 'UTC'));
INSERT INTO categories (parent_id, slug, name_zh, name_en, deposit_fen, required_qualifications, sort_order, created_at) VALUES (NULL, 'health', '医疗保健', 'Health', 1000000, 'medical_device', 21, (now() AT TIME ZONE 'UTC'));
INSERT INTO categories (parent_id, slug, name_zh, name_en, deposit_fen, required_qualifications, sort_order, created_at) VALUES ((SELECT id FROM categories WHERE slug = 'health'), 'health-devices', '家用医疗器械', 'Home medical devices', 1000000, 'medical_device', 22, (now() AT TIME ZONE 'UTC'));
