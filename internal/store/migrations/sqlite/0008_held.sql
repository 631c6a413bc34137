-- held_messages: messages a sink refused, set aside so that the messages
-- after them flow. state: failing (refused temporarily, not yet set
-- aside), deferred (refused temporarily too often: retried automatically
-- at next_at), held (refused permanently: waits for an administrator),
-- retry (an administrator asked for another attempt), dropped (an
-- administrator let it go: never fetched again). A row is deleted when
-- the message is recorded as delivered in delivery_ledger. Times are
-- Unix nanoseconds.
CREATE TABLE held_messages (
	mailbox    TEXT    NOT NULL,
	msg_key    TEXT    NOT NULL,
	uid        TEXT    NOT NULL,
	message_id TEXT    NOT NULL DEFAULT '',
	subject    TEXT    NOT NULL DEFAULT '',
	sender     TEXT    NOT NULL DEFAULT '',
	size       BIGINT  NOT NULL DEFAULT -1,
	msg_date   BIGINT,
	state      TEXT    NOT NULL,
	permanent  INTEGER NOT NULL DEFAULT 0,
	reason     TEXT    NOT NULL DEFAULT '',
	attempts   INTEGER NOT NULL DEFAULT 0,
	first_at   BIGINT  NOT NULL,
	last_at    BIGINT  NOT NULL,
	next_at    BIGINT,
	PRIMARY KEY (mailbox, msg_key)
);
CREATE INDEX held_messages_state ON held_messages (mailbox, state);
