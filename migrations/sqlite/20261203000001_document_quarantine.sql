-- Updates of a document's log that are left out when it is loaded, because they could
-- not be applied: the row stays in document_updates (it records who sent what), and
-- this says it is not part of the document, why, and since when.
CREATE TABLE document_quarantine (
    conference_id TEXT NOT NULL,
    document TEXT NOT NULL,
    seq INTEGER NOT NULL,
    reason TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (conference_id, document, seq)
);
