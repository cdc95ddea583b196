-- Resources per app (off by default). memory_max: bytes the app's whole process tree may hold
-- before it is restarted (and the kernel's limit of its cgroup where Hangar can make one);
-- NULL: the runtime's default, if any. nice: the CPU priority of its process group (-20..19);
-- NULL: the runtime's default, else 0.
ALTER TABLE apps ADD COLUMN memory_max INTEGER CHECK (memory_max IS NULL OR memory_max > 0);
ALTER TABLE apps ADD COLUMN nice INTEGER CHECK (nice IS NULL OR (nice >= -20 AND nice <= 19));
