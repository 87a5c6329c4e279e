-- A review conference names the conference it reviews, so that its safety scales
-- can be shown beside the scores given then.
ALTER TABLE conferences ADD COLUMN previous_conference_id TEXT
    REFERENCES conferences (id) ON DELETE SET NULL;

-- Safety scales. The scores stay in `scale_votes`, out of the shared document,
-- until the chair reveals them.
CREATE TABLE scales (
    id TEXT PRIMARY KEY NOT NULL,
    conference_id TEXT NOT NULL REFERENCES conferences (id) ON DELETE CASCADE,
    -- 1 for the conference's first scale, then 2, 3, ...
    number INTEGER NOT NULL,
    -- JSON: what is scored ({"kind": "child", "child": ...} and so on).
    subject TEXT NOT NULL,
    -- Who or what is scored, in words.
    about TEXT NOT NULL,
    -- JSON: the question and the meaning of 0 and 10, for professionals and the family.
    wording TEXT NOT NULL,
    -- open | closed | revealed
    status TEXT NOT NULL,
    opened_at INTEGER NOT NULL,
    closed_at INTEGER,
    revealed_at INTEGER,
    CONSTRAINT scales_number_unique UNIQUE (conference_id, number)
);
-- At most one scale of a conference is open at a time.
CREATE UNIQUE INDEX scales_one_open ON scales (conference_id) WHERE status = 'open';

CREATE TABLE scale_votes (
    scale_id TEXT NOT NULL REFERENCES scales (id) ON DELETE CASCADE,
    participant_id TEXT NOT NULL REFERENCES participants (id) ON DELETE CASCADE,
    score INTEGER NOT NULL CHECK (score BETWEEN 0 AND 10),
    reason TEXT,
    -- The chair's participant id when the chair entered the score on someone's behalf.
    entered_by TEXT REFERENCES participants (id) ON DELETE SET NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (scale_id, participant_id)
);

-- What was done in a conference, by whom and when. Rows are only ever added; they
-- go only when the whole conference is deleted.
CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conference_id TEXT NOT NULL REFERENCES conferences (id) ON DELETE CASCADE,
    at INTEGER NOT NULL,
    -- The participant who did it (the chair is a participant too).
    actor TEXT,
    action TEXT NOT NULL,
    -- JSON: what exactly, e.g. which scale and which score.
    detail TEXT NOT NULL
);
CREATE INDEX audit_events_by_conference ON audit_events (conference_id, id);
CREATE TRIGGER audit_events_are_never_changed BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit events are never changed');
END;
