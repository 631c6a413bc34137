-- proxy_logins: the last login of each legacy-client proxy account, so
-- the console shows it after a restart: when (Unix milliseconds), on which
-- listener, from which address, its result and, for a refusal, the advice
-- (one line each, joined by newlines). Never a password or a token.
-- Runtime state: neither backed up nor copied by store migrate.
CREATE TABLE proxy_logins (
	account  TEXT   PRIMARY KEY,
	at_ms    BIGINT NOT NULL,
	listener TEXT   NOT NULL,
	remote   TEXT   NOT NULL,
	result   TEXT   NOT NULL,
	advice   TEXT   NOT NULL
);
