ALTER TABLE sessions DROP COLUMN mfa;
ALTER TABLE users DROP COLUMN totp_last_step;
ALTER TABLE users DROP COLUMN totp_secret;
