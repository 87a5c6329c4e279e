-- The end of the meeting: the decision for each child, who attended, the dates of
-- the next meetings, and the closing of the conference.

-- When the chair closed the conference (Unix ms); NULL while it is open. A closed
-- conference changes no more until the chair reopens it.
ALTER TABLE conferences ADD COLUMN closed_at BIGINT;
-- The dates (YYYY-MM-DD) the chair chose for the first core group and the next
-- review; NULL means the latest date allowed, worked out from the conference's date.
ALTER TABLE conferences ADD COLUMN core_group_by TEXT;
ALTER TABLE conferences ADD COLUMN review_by TEXT;
CREATE INDEX conferences_by_closed_at ON conferences (closed_at) WHERE closed_at IS NOT NULL;

-- The conference's decision for each child; recording it again replaces it (the
-- audit log keeps every version).
CREATE TABLE decisions (
    conference_id TEXT COLLATE "C" NOT NULL REFERENCES conferences (id) ON DELETE CASCADE,
    child_id TEXT COLLATE "C" NOT NULL,
    -- JSON: {decision: {outcome, categories?}, agency_views, dissent, lead_social_worker}
    body TEXT COLLATE "C" NOT NULL,
    -- The participant (the chair) who recorded it.
    recorded_by TEXT COLLATE "C" REFERENCES participants (id) ON DELETE SET NULL,
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (conference_id, child_id)
);

-- Who was present, sent apologies, or was absent.
CREATE TABLE attendance (
    conference_id TEXT COLLATE "C" NOT NULL REFERENCES conferences (id) ON DELETE CASCADE,
    participant_id TEXT COLLATE "C" NOT NULL REFERENCES participants (id) ON DELETE CASCADE,
    status TEXT COLLATE "C" NOT NULL CHECK (status IN ('present', 'apologies', 'absent')),
    PRIMARY KEY (conference_id, participant_id)
);
