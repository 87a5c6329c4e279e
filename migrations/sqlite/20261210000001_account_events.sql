-- What happened to a chair's account that its owner should know: wrong passwords
-- tried against it, and sign-ins. Only the latest are kept (see `storage.rs`).
CREATE TABLE account_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    chair_id TEXT NOT NULL REFERENCES chairs (id) ON DELETE CASCADE,
    at INTEGER NOT NULL,
    action TEXT NOT NULL,
    -- JSON: e.g. how many wrong passwords, and from how many addresses.
    detail TEXT NOT NULL
);
CREATE INDEX account_events_by_chair ON account_events (chair_id, id);
