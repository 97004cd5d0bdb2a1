-- Follower and following counts kept on the account, so a storefront or profile view reads a
-- number instead of counting a creator's followers (a million index entries for a big account)
-- on every view. Triggers keep them, so every way a follow is made or removed (the service,
-- seeds, an account's deletion cascading) counts.
ALTER TABLE users ADD COLUMN followers_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN following_count BIGINT NOT NULL DEFAULT 0;
UPDATE users SET
    followers_count = (SELECT count(*) FROM follows WHERE follows.followee_id = users.id),
    following_count = (SELECT count(*) FROM follows WHERE follows.follower_id = users.id);
CREATE TRIGGER follows_counted AFTER INSERT ON follows BEGIN
    UPDATE users SET followers_count = followers_count + 1 WHERE id = NEW.followee_id;
    UPDATE users SET following_count = following_count + 1 WHERE id = NEW.follower_id;
END;
CREATE TRIGGER follows_uncounted AFTER DELETE ON follows BEGIN
    UPDATE users SET followers_count = followers_count - 1 WHERE id = OLD.followee_id;
    UPDATE users SET following_count = following_count - 1 WHERE id = OLD.follower_id;
END;
