-- Whose changes each Yjs client id carries in a document: the participant who first
-- made changes under it. The server refuses an update that writes under an id that
-- belongs to someone else (two devices writing under one id would each keep their own
-- change at one clock). Ids used before this table existed belong to nobody until a
-- participant writes under them again.
CREATE TABLE document_clients (
    conference_id TEXT COLLATE "C" NOT NULL REFERENCES conferences (id) ON DELETE CASCADE,
    document TEXT COLLATE "C" NOT NULL,
    -- The client id's 64 bits, as a signed integer.
    client_id BIGINT NOT NULL,
    participant_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (conference_id, document, client_id)
);
