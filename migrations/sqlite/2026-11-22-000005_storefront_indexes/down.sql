DROP INDEX products_listed_price_max;
DROP INDEX products_listed_price_min;
DROP INDEX skus_product_position;
CREATE INDEX skus_product ON skus (product_id);
DROP INDEX products_shop_categories;
DROP INDEX products_shop_status_listed;
CREATE INDEX products_shop_status ON products (shop_id, status);
