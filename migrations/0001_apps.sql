-- The registry: what should be. The supervisor reconciles what is.
CREATE TABLE apps (
    name          TEXT PRIMARY KEY NOT NULL,
    display_name  TEXT NOT NULL,
    start_mode    TEXT NOT NULL CHECK (start_mode IN ('with-main', 'on-visit')),
    port          INTEGER NOT NULL UNIQUE,
    domain        TEXT UNIQUE,
    pinned        INTEGER NOT NULL DEFAULT 0,
    runtime       TEXT,                     -- NULL: the main app's runtime
    db_json       TEXT NOT NULL,            -- AppDb, secrets included; never leaves the engine
    env_json      TEXT NOT NULL DEFAULT '{}',
    app_key       TEXT NOT NULL,
    -- running: keep it up; stopped: the operator stopped it (sticky); dormant: not running,
    -- a visit may start it (on-visit apps never started, or stopped for idleness)
    desired       TEXT NOT NULL CHECK (desired IN ('running', 'stopped', 'dormant')),
    last_version  TEXT,
    pid           INTEGER,                  -- the process group leader while running
    pid_started   INTEGER,                  -- its start time (clock ticks since boot), to tell pid reuse
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
