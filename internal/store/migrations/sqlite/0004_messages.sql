-- messages kept by the "store" sink, browsable in the console. The raw
-- bytes are in message_chunks (256 KB each) so that a large message is
-- never one value in memory.
CREATE TABLE messages (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	mailbox     TEXT    NOT NULL,
	msg_key     TEXT    NOT NULL UNIQUE,
	size        INTEGER NOT NULL,
	received_at INTEGER,
	stored_at   INTEGER NOT NULL
);
CREATE TABLE message_chunks (
	message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
	seq        INTEGER NOT NULL,
	data       BLOB    NOT NULL,
	PRIMARY KEY (message_id, seq)
);
