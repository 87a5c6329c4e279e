-- What happened to a chair's account that its owner should know: wrong passwords
-- tried against it, and sign-ins. Only the latest are kept (see `storage.rs`).
CREATE TABLE account_events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chair_id TEXT COLLATE "C" NOT NULL REFERENCES chairs (id) ON DELETE CASCADE,
    at BIGINT NOT NULL,
    action TEXT COLLATE "C" NOT NULL,
    -- JSON: e.g. how many wrong passwords, and from how many addresses.
    detail TEXT COLLATE "C" NOT NULL
);
CREATE INDEX account_events_by_chair ON account_events (chair_id, id);
