-- reserved for issue 12's held messages (another branch adds its own
-- 0008); this placeholder keeps the versions without gaps on this branch
-- and is dropped when the branches are merged.
SELECT 1;
