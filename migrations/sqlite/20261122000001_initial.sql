-- Chairs: the only accounts with passwords.
CREATE TABLE chairs (
    id TEXT PRIMARY KEY NOT NULL,
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    CONSTRAINT chairs_email_unique UNIQUE (email)
);

CREATE TABLE conferences (
    id TEXT PRIMARY KEY NOT NULL,
    chair_id TEXT NOT NULL REFERENCES chairs (id),
    title TEXT NOT NULL,
    kind TEXT NOT NULL,
    -- RFC 3339, as the chair entered it (with their offset).
    scheduled_start TEXT NOT NULL,
    headings TEXT NOT NULL,
    -- JSON array of {id, name, date_of_birth}.
    children TEXT NOT NULL,
    phase TEXT NOT NULL,
    -- Short code people in the room type (or scan) to reach the lobby.
    room_code TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    CONSTRAINT conferences_room_code_unique UNIQUE (room_code)
);
CREATE INDEX conferences_by_chair ON conferences (chair_id, scheduled_start);

-- Everyone taking part, the chair included. `role` is NULL while someone who joined
-- from the room waits in the lobby.
CREATE TABLE participants (
    id TEXT PRIMARY KEY NOT NULL,
    conference_id TEXT NOT NULL REFERENCES conferences (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    role TEXT,
    agency TEXT,
    -- invited | waiting | admitted | turned_away | removed
    status TEXT NOT NULL,
    -- SHA-256 of the personal join link's token; the token itself is never stored.
    link_hash BLOB,
    link_expires_at INTEGER,
    chair_id TEXT REFERENCES chairs (id),
    created_at INTEGER NOT NULL,
    CONSTRAINT participants_link_unique UNIQUE (link_hash)
);
CREATE INDEX participants_by_conference ON participants (conference_id);

-- Browser sessions. Only the SHA-256 of the cookie value is stored.
CREATE TABLE sessions (
    token_hash BLOB PRIMARY KEY NOT NULL,
    chair_id TEXT REFERENCES chairs (id) ON DELETE CASCADE,
    participant_id TEXT REFERENCES participants (id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL,
    CHECK ((chair_id IS NULL) <> (participant_id IS NULL))
);

-- The append-only log of document updates, in the order they were applied.
CREATE TABLE document_updates (
    conference_id TEXT NOT NULL REFERENCES conferences (id) ON DELETE CASCADE,
    document TEXT NOT NULL,
    seq INTEGER NOT NULL,
    -- Who sent it; NULL for the server's own changes.
    participant_id TEXT,
    data BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (conference_id, document, seq)
);

-- The log compacted: the whole document as of `through_seq`.
CREATE TABLE document_snapshots (
    conference_id TEXT NOT NULL REFERENCES conferences (id) ON DELETE CASCADE,
    document TEXT NOT NULL,
    through_seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (conference_id, document)
);
