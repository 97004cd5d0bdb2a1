-- Optional TOTP second factor (RFC 6238). A user with a secret logs in in two steps: the
-- password opens a session in state 'pending' that reaches nothing but the code form; the code
-- makes it 'verified'. totp_last_step refuses a code used before (replay).
ALTER TABLE users ADD COLUMN totp_secret TEXT;
ALTER TABLE users ADD COLUMN totp_last_step BIGINT;
ALTER TABLE sessions ADD COLUMN mfa TEXT NOT NULL DEFAULT 'off';
