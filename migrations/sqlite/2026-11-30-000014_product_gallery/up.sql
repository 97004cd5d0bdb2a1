-- The product page's images as "full:thumb,full:thumb" in display order (thumb empty when
-- there is none), kept with cover_media_id on every image change: the page reads them with the
-- product instead of with a statement of its own.
ALTER TABLE products ADD COLUMN gallery TEXT NOT NULL DEFAULT '';
UPDATE products SET gallery = COALESCE((
    SELECT string_agg(media_id || ':' || COALESCE(thumb_media_id, ''), ',' ORDER BY position, id)
    FROM product_images WHERE product_images.product_id = products.id), '');
