-- messages kept by the "store" sink, browsable in the console. The raw
-- bytes are in message_chunks (256 KB each) so that a large message is
-- never one value in memory.
CREATE TABLE messages (
	id          BIGSERIAL PRIMARY KEY,
	mailbox     TEXT   NOT NULL,
	msg_key     TEXT   NOT NULL UNIQUE,
	size        BIGINT NOT NULL,
	received_at BIGINT,
	stored_at   BIGINT NOT NULL
);
CREATE TABLE message_chunks (
	message_id BIGINT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
	seq        INTEGER NOT NULL,
	data       BYTEA   NOT NULL,
	PRIMARY KEY (message_id, seq)
);
