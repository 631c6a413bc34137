-- store_meta holds facts about the store itself, such as the key check:
-- a known value sealed with the store key, opened at every start so that a
-- wrong key is reported before any real value is touched.
CREATE TABLE store_meta (
	name  TEXT PRIMARY KEY,
	value BLOB NOT NULL
);
