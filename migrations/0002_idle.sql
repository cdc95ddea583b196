-- Idle stop (per app, off by default): an on-visit app with an idle timeout goes dormant after
-- this many seconds with no request and no open connection through the proxy. NULL: never.
ALTER TABLE apps ADD COLUMN idle_timeout INTEGER CHECK (idle_timeout IS NULL OR idle_timeout > 0);
