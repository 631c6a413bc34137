-- mailbox_leases: which serve instance serves each mailbox when several
-- share the store. owner is the instance id ('' = released), epoch grows
-- at every takeover and fences the ledger and cursor writes of an owner
-- that lost the lease; times are milliseconds by the database's clock.
CREATE TABLE mailbox_leases (
	mailbox     TEXT   PRIMARY KEY,
	owner       TEXT   NOT NULL,
	epoch       BIGINT NOT NULL,
	expires_ms  BIGINT NOT NULL,
	acquired_ms BIGINT NOT NULL
);
CREATE INDEX mailbox_leases_owner ON mailbox_leases (owner);

-- serve_instances: the serve instances that hold leases, with their last
-- heartbeat by the database's clock (the fair share counts the live ones).
CREATE TABLE serve_instances (
	instance   TEXT   PRIMARY KEY,
	started_ms BIGINT NOT NULL,
	seen_ms    BIGINT NOT NULL
);
