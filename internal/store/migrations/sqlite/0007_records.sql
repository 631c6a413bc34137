-- records created in the console (profiles, mailboxes, sinks, senders):
-- each is the YAML of one item of the config file's lists, sealed with
-- AES-256-GCM because it holds secrets (client secrets, webhook secrets).
CREATE TABLE config_records (
	kind       TEXT   NOT NULL,
	name       TEXT   NOT NULL,
	sealed     BLOB   NOT NULL,
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (kind, name)
);
