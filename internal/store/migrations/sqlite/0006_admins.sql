-- console access: administrators (password hashes), their browser sessions
-- and API tokens. Session ids and API tokens are stored as SHA-256 hashes
-- only, so the store does not hold anything a request could present.
-- Times are Unix nanoseconds.
CREATE TABLE admins (
	name       TEXT   PRIMARY KEY,
	pw_hash    TEXT   NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE TABLE admin_sessions (
	id_hash    TEXT   PRIMARY KEY,
	admin      TEXT   NOT NULL REFERENCES admins (name) ON DELETE CASCADE,
	expires_at BIGINT NOT NULL
);
CREATE TABLE api_tokens (
	token_hash TEXT   PRIMARY KEY,
	admin      TEXT   NOT NULL REFERENCES admins (name) ON DELETE CASCADE,
	created_at BIGINT NOT NULL,
	last_used  BIGINT NOT NULL DEFAULT 0
);
