-- The product page's images as "full:thumb,full:thumb" in display order (thumb empty when
-- there is none), kept with cover_media_id on every image change: the page reads them with the
-- product instead of with a statement of its own.
ALTER TABLE products ADD COLUMN gallery TEXT NOT NULL DEFAULT '';
UPDATE products SET gallery = COALESCE((
    SELECT string_agg(media_id || ':' || COALESCE(thumb_media_id, ''), ',' ORDER BY position, id)
    FROM product_images WHERE product_images.product_id = products.id), '');

-- The product page's ratings, newest first, straight from an index (no sort of every rating
-- of the product per view), and its star counts from an index alone.
ALTER TABLE rating_products ADD COLUMN created_at TIMESTAMP NOT NULL DEFAULT '1970-01-01 00:00:00';
UPDATE rating_products SET created_at = (
    SELECT ratings.created_at FROM ratings WHERE ratings.id = rating_products.rating_id);
CREATE INDEX rating_products_newest ON rating_products (product_id, created_at, rating_id);
CREATE INDEX rating_products_stars ON rating_products (product_id, described);
