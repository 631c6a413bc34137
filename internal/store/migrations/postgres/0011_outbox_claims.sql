-- outbox claims: a worker (one serve instance's sender connection) marks
-- the batch it takes as sending, with its name and when its claim lapses.
-- A message left in sending is taken again only after claim_until (0: a
-- row from before claims, taken again at once), so that several instances
-- on one store never send a message another one is sending.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN claim_until BIGINT NOT NULL DEFAULT 0;
CREATE INDEX outbox_sender_due ON outbox (sender, state, next_attempt);
