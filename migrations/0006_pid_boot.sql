-- The boot a recorded pid belongs to (/proc/sys/kernel/random/boot_id). Pids and process start
-- times (clock ticks since boot) start again at every boot, so a pid recorded in another boot
-- may name a live, unrelated process of this one: such a record is never signalled. NULL: an
-- older engine recorded it, in a boot no one can tell; it is never signalled either.
ALTER TABLE apps ADD COLUMN pid_boot TEXT;
