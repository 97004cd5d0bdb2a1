DROP INDEX skus_product_position;
CREATE INDEX skus_product ON skus (product_id);
DROP INDEX products_shop_status_listed;
CREATE INDEX products_shop_status ON products (shop_id, status);
