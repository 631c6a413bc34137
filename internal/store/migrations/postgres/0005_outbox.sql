-- outbox: messages accepted for sending, durable before the caller hears
-- "queued". state: queued, sending (handed to the server, not yet
-- confirmed: a crash here may send twice), sent, failed. Times are Unix
-- nanoseconds.
CREATE TABLE outbox (
	id           BIGSERIAL PRIMARY KEY,
	sender       TEXT    NOT NULL,
	mail_from    TEXT    NOT NULL,
	raw          BYTEA    NOT NULL,
	state        TEXT    NOT NULL,
	attempts     INTEGER NOT NULL DEFAULT 0,
	next_attempt BIGINT NOT NULL,
	last_error   TEXT    NOT NULL DEFAULT '',
	created_at   BIGINT NOT NULL,
	updated_at   BIGINT NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, next_attempt);
CREATE TABLE outbox_rcpts (
	outbox_id BIGINT NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
	rcpt      TEXT    NOT NULL,
	state     TEXT    NOT NULL,
	reply     TEXT    NOT NULL DEFAULT '',
	PRIMARY KEY (outbox_id, rcpt)
);
-- heartbeats of running `mailgate serve` processes, so that `mailgate send`
-- knows whether an outbox worker will pick its messages up.
CREATE TABLE serve_heartbeats (
	instance TEXT    PRIMARY KEY,
	seen_at  BIGINT NOT NULL
);
