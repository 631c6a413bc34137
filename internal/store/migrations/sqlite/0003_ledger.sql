-- mailbox_cursors: where each mailbox's scan continues (IMAP UIDVALIDITY
-- and the highest UID fully processed; Graph: the delta link).
CREATE TABLE mailbox_cursors (
	mailbox  TEXT    PRIMARY KEY,
	validity TEXT    NOT NULL,
	last_uid TEXT    NOT NULL,
	saved_at INTEGER NOT NULL
);

-- delivery_ledger: one row per message handed to a sink, keyed by its
-- idempotency key. state 1 = delivered (the sink has it), 2 = acknowledged
-- on the server (marked, moved or deleted). Times are Unix nanoseconds.
CREATE TABLE delivery_ledger (
	mailbox      TEXT    NOT NULL,
	msg_key      TEXT    NOT NULL,
	uid          TEXT    NOT NULL,
	message_id   TEXT    NOT NULL DEFAULT '',
	size         INTEGER NOT NULL DEFAULT -1,
	msg_date     INTEGER,
	sink_ref     TEXT    NOT NULL DEFAULT '',
	state        INTEGER NOT NULL,
	delivered_at INTEGER NOT NULL,
	acked_at     INTEGER,
	PRIMARY KEY (mailbox, msg_key)
);
CREATE INDEX delivery_ledger_state ON delivery_ledger (mailbox, state);
CREATE INDEX delivery_ledger_identity ON delivery_ledger (mailbox, message_id, size);
