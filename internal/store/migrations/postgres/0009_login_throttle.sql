-- console sign-in throttling and administration: failed sign-ins counted
-- per (administrator name, client address) with the time before which the
-- next attempt is refused (no foreign key: names that do not exist are
-- throttled the same way); when an administrator last signed in; and an
-- optional expiry for API tokens (0: none). Times are Unix nanoseconds.
CREATE TABLE login_failures (
	admin    TEXT    NOT NULL,
	address  TEXT    NOT NULL,
	failures INTEGER NOT NULL,
	last_at  BIGINT  NOT NULL,
	next_at  BIGINT  NOT NULL,
	PRIMARY KEY (admin, address)
);
ALTER TABLE admins ADD COLUMN last_login BIGINT NOT NULL DEFAULT 0;
ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT NOT NULL DEFAULT 0;
