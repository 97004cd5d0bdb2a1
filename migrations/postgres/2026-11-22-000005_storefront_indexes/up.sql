-- A storefront lists one shop's listed products newest first: with listed_at in the index the
-- page is read in order from it instead of walking every listed product of the platform.
DROP INDEX products_shop_status;
CREATE INDEX products_shop_status_listed ON products (shop_id, status, listed_at);
-- Its category filter lists the categories the shop sells in, from this index alone.
CREATE INDEX products_shop_categories ON products (shop_id, status, category_id);
-- A product page shows its SKUs in position order.
DROP INDEX skus_product;
CREATE INDEX skus_product_position ON skus (product_id, position);
-- Platform search sorted by price walks listed products in price order.
CREATE INDEX products_listed_price_min ON products (status, price_min);
CREATE INDEX products_listed_price_max ON products (status, price_max);
