-- Why an app is in `error` (Hangar gave up restarting it, a start or an upgrade failed), kept
-- so that the state and its reason survive an engine restart. NULL: not in error.
ALTER TABLE apps ADD COLUMN error TEXT;
