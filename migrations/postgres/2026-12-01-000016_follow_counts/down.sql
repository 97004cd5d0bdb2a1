DROP TRIGGER follows_counted ON follows;
DROP FUNCTION follows_count();
ALTER TABLE users DROP COLUMN following_count;
ALTER TABLE users DROP COLUMN followers_count;
