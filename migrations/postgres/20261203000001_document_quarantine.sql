-- Updates of a document's log that are left out when it is loaded, because they could
-- not be applied: the row stays in document_updates (it records who sent what), and
-- this says it is not part of the document, why, and since when.
CREATE TABLE document_quarantine (
    conference_id TEXT COLLATE "C" NOT NULL,
    document TEXT COLLATE "C" NOT NULL,
    seq BIGINT NOT NULL,
    reason TEXT COLLATE "C" NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (conference_id, document, seq)
);
