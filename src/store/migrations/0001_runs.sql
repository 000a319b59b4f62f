-- 1: runs, their journal events and step logs, and the lease of the runbook that drives each.
CREATE TABLE runs (
    run_id      text PRIMARY KEY,        -- the run folder's name: <UTC time>-<runbook id>
    runbook     text NOT NULL,           -- the runbook's id
    title       text NOT NULL,
    file        text NOT NULL,           -- the runbook file (absolute path on the host that started it)
    sha256      text NOT NULL,           -- of that file
    operator    text NOT NULL,           -- who started the run (Unix user)
    host        text NOT NULL,           -- where
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE events (
    run_id  text   NOT NULL REFERENCES runs ON DELETE CASCADE,
    seq     bigint NOT NULL,             -- the line's number in journal.jsonl, from 1
    event   text   NOT NULL,             -- the event's name (run_started, step_finished, ...)
    ts      text   NOT NULL,             -- its time, as in the journal (RFC 3339, UTC, ms)
    line    text   NOT NULL,             -- the journal line exactly as written locally (masked)
    epoch   bigint NOT NULL,             -- the lease epoch of the driver that wrote it
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE log_chunks (
    run_id  text   NOT NULL REFERENCES runs ON DELETE CASCADE,
    log     text   NOT NULL,             -- the log's path in the run folder (logs/...)
    "offset" bigint NOT NULL,            -- where the chunk starts in that file, in bytes
    data    bytea  NOT NULL,             -- the bytes as written locally (masked)
    epoch   bigint NOT NULL,
    PRIMARY KEY (run_id, log, "offset")
);

CREATE TABLE leases (
    run_id      text PRIMARY KEY REFERENCES runs ON DELETE CASCADE,
    epoch       bigint      NOT NULL,    -- bumped by every new driver; fences the ones before
    operator    text        NOT NULL,
    host        text        NOT NULL,
    pid         integer     NOT NULL,
    acquired_at timestamptz NOT NULL,
    renewed_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL     -- the store's clock, never a bastion's
);
