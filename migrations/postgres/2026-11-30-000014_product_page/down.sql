DROP INDEX rating_products_stars;
DROP INDEX rating_products_newest;
ALTER TABLE rating_products DROP COLUMN created_at;
ALTER TABLE products DROP COLUMN gallery;
