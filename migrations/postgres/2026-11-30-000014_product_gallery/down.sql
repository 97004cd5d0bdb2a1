ALTER TABLE products DROP COLUMN gallery;
