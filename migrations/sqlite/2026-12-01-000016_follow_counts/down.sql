DROP TRIGGER follows_uncounted;
DROP TRIGGER follows_counted;
ALTER TABLE users DROP COLUMN following_count;
ALTER TABLE users DROP COLUMN followers_count;
