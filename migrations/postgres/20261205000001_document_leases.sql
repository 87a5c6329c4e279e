-- Several server nodes on one database. Each document has one owner node at a time,
-- which alone checks and stores its updates: the holder of its lease. SQLite has one
-- node, always the owner, and no such tables (each engine's migrations are a set of
-- their own).

-- A document's lease. PostgreSQL's clock (now()) is the only one that counts: a
-- lease is held while `expires_at` is ahead of it. Another node takes over only an
-- expired lease, and `epoch` goes up by one each time; every write the owner makes
-- checks, in its own transaction, that the lease is still its own, at its epoch and
-- unexpired, so a node that was paused past its lease writes nothing. A lease given
-- up expires at once; the row stays, so that the epoch only ever goes up.
CREATE TABLE document_leases (
    conference_id TEXT COLLATE "C" NOT NULL REFERENCES conferences (id) ON DELETE CASCADE,
    document TEXT COLLATE "C" NOT NULL,
    -- The owner's node name (`--node-name`).
    node TEXT COLLATE "C" NOT NULL,
    epoch BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (conference_id, document)
);

-- Updates that reached a node that does not own their document, for the owner to
-- check and store as its own, with who sent them as the receiving node knows them
-- (no one: the server's own change, the outcome of a command that node handled).
-- The owner writes its verdict into the row in the transaction that stores the
-- update (if it was accepted), and the receiving node takes the row away once it
-- has read the verdict.
CREATE TABLE forwarded_updates (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conference_id TEXT COLLATE "C" NOT NULL REFERENCES conferences (id) ON DELETE CASCADE,
    document TEXT COLLATE "C" NOT NULL,
    -- The node the update reached, and the connection there that sent it.
    node TEXT COLLATE "C" NOT NULL,
    connection BIGINT NOT NULL,
    participant_id TEXT COLLATE "C",
    role TEXT COLLATE "C",
    data BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- NULL until the owner has decided: accepted (stored as `seq`), known (nothing
    -- new), refused (for `reason`) or malformed.
    verdict TEXT COLLATE "C" CHECK (verdict IN ('accepted', 'known', 'refused', 'malformed')),
    reason TEXT COLLATE "C",
    seq BIGINT,
    CHECK ((participant_id IS NULL) = (role IS NULL))
);
CREATE INDEX forwarded_updates_waiting ON forwarded_updates (conference_id, document, id)
    WHERE verdict IS NULL;
CREATE INDEX forwarded_updates_decided ON forwarded_updates (conference_id, document, node)
    WHERE verdict IS NOT NULL;
