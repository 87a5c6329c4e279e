-- PostgreSQL's schema is SQLite's (migrations/sqlite, same versions) in native types:
-- TEXT for ids and words, BIGINT for numbers and times (Unix ms), BYTEA for bytes.
-- Text is compared byte by byte (COLLATE "C"), as SQLite compares it, so that rows
-- come in the same order from either engine whatever the database's locale.

-- Chairs: the only accounts with passwords.
CREATE TABLE chairs (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    email TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    password_hash TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    CONSTRAINT chairs_email_unique UNIQUE (email)
);

CREATE TABLE conferences (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    chair_id TEXT COLLATE "C" NOT NULL REFERENCES chairs (id),
    title TEXT COLLATE "C" NOT NULL,
    kind TEXT COLLATE "C" NOT NULL,
    -- RFC 3339, as the chair entered it (with their offset).
    scheduled_start TEXT COLLATE "C" NOT NULL,
    headings TEXT COLLATE "C" NOT NULL,
    -- JSON array of {id, name, date_of_birth}.
    children TEXT COLLATE "C" NOT NULL,
    phase TEXT COLLATE "C" NOT NULL,
    -- Short code people in the room type (or scan) to reach the lobby.
    room_code TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    CONSTRAINT conferences_room_code_unique UNIQUE (room_code)
);
CREATE INDEX conferences_by_chair ON conferences (chair_id, scheduled_start);

-- Everyone taking part, the chair included. `role` is NULL while someone who joined
-- from the room waits in the lobby.
CREATE TABLE participants (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    conference_id TEXT COLLATE "C" NOT NULL REFERENCES conferences (id) ON DELETE CASCADE,
    name TEXT COLLATE "C" NOT NULL,
    role TEXT COLLATE "C",
    agency TEXT COLLATE "C",
    -- invited | waiting | admitted | turned_away | removed
    status TEXT COLLATE "C" NOT NULL,
    -- SHA-256 of the personal join link's token; the token itself is never stored.
    link_hash BYTEA,
    link_expires_at BIGINT,
    chair_id TEXT COLLATE "C" REFERENCES chairs (id),
    created_at BIGINT NOT NULL,
    CONSTRAINT participants_link_unique UNIQUE (link_hash)
);
CREATE INDEX participants_by_conference ON participants (conference_id);

-- Browser sessions. Only the SHA-256 of the cookie value is stored.
CREATE TABLE sessions (
    token_hash BYTEA PRIMARY KEY NOT NULL,
    chair_id TEXT COLLATE "C" REFERENCES chairs (id) ON DELETE CASCADE,
    participant_id TEXT COLLATE "C" REFERENCES participants (id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL,
    CHECK ((chair_id IS NULL) <> (participant_id IS NULL))
);

-- The append-only log of document updates, in the order they were applied.
CREATE TABLE document_updates (
    conference_id TEXT COLLATE "C" NOT NULL REFERENCES conferences (id) ON DELETE CASCADE,
    document TEXT COLLATE "C" NOT NULL,
    seq BIGINT NOT NULL,
    -- Who sent it; NULL for the server's own changes.
    participant_id TEXT COLLATE "C",
    data BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (conference_id, document, seq)
);

-- The log compacted: the whole document as of `through_seq`.
CREATE TABLE document_snapshots (
    conference_id TEXT COLLATE "C" NOT NULL REFERENCES conferences (id) ON DELETE CASCADE,
    document TEXT COLLATE "C" NOT NULL,
    through_seq BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (conference_id, document)
);
