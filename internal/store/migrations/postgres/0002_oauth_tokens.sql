-- oauth_tokens is the access-token cache of oauth.Store: one row per
-- profile and normalised scope set. Times are Unix nanoseconds (NULL when
-- zero). access_token, refresh_token and id_token are sealed (AES-256-GCM,
-- additional data: table, column, profile, scope_key).
CREATE TABLE oauth_tokens (
	profile       TEXT    NOT NULL,
	scope_key     TEXT    NOT NULL,
	access_token  BYTEA,
	refresh_token BYTEA,
	id_token      BYTEA,
	token_type    TEXT    NOT NULL DEFAULT '',
	scope         TEXT    NOT NULL DEFAULT '',
	resource      TEXT    NOT NULL DEFAULT '',
	issued_at     BIGINT,
	expiry        BIGINT,
	ext_expiry    BIGINT,
	refresh_after BIGINT,
	saved_at      BIGINT NOT NULL,
	PRIMARY KEY (profile, scope_key)
);

-- oauth_refresh_tokens holds each profile's refresh token, sealed with the
-- additional data (table, column, profile). used_at is when it was last
-- read for a refresh.
CREATE TABLE oauth_refresh_tokens (
	profile       TEXT    PRIMARY KEY,
	refresh_token BYTEA   NOT NULL,
	saved_at      BIGINT NOT NULL,
	used_at       BIGINT
);
