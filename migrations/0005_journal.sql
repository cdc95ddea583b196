-- Operations in flight that touch things outside the registry (databases on the data service,
-- data folders). Written before the first outside change and removed after the last, so an
-- engine that starts after a crash can finish or undo each one.
CREATE TABLE journal (
    name          TEXT PRIMARY KEY NOT NULL,
    op            TEXT NOT NULL CHECK (op IN ('create', 'delete')),
    data_service  TEXT,                     -- the service a create provisions on
    existed_json  TEXT NOT NULL DEFAULT '[]', -- create: objects of that name there before it began
    db_json       TEXT,                     -- delete: the app's AppDb
    drop_db       INTEGER NOT NULL DEFAULT 0,
    started_at    TEXT NOT NULL
);
