-- Search index: character n-grams of listed products' titles and subtitles (bigrams, and
-- single CJK characters), so substring search works for Chinese on both backends without a
-- tokenizer and without scanning every product.
CREATE TABLE search_grams (
    gram TEXT NOT NULL,
    product_id BIGINT NOT NULL REFERENCES products(id) ON DELETE CASCADE,
    PRIMARY KEY (gram, product_id)
);
CREATE INDEX search_grams_product ON search_grams (product_id);
CREATE INDEX products_listed_sales ON products (status, sales_count, listed_at);
