-- serve instances beat in serve_instances (0010, by the database's clock,
-- with the leases); serve_heartbeats was a second heartbeat of the same
-- processes, written every 5 s beside it.
DROP TABLE serve_heartbeats;
