-- 2: requests to a run's driver from other hosts (approve, note, takeover), and deploy locks.

-- One row per request. Who asked: `role` is the store role of the asking session, set here by
-- the store itself (the trigger below), the only part of the row the store vouches for;
-- `unix_user` and `host` are what the asking runbook reports about itself.
CREATE TABLE requests (
    id          bigserial PRIMARY KEY,
    run_id      text        NOT NULL REFERENCES runs ON DELETE CASCADE,
    kind        text        NOT NULL,    -- hello, note, approve, takeover
    payload     jsonb       NOT NULL,    -- the request, as the control socket carries it
    role        text        NOT NULL,    -- current_user of the asking session (set by the trigger)
    unix_user   text        NOT NULL,    -- the asking process's Unix user, as it reports it
    host        text        NOT NULL,    -- the asking process's host, as it reports it
    pid         integer     NOT NULL,    -- the asking process, on that host
    backend     integer     NOT NULL,    -- the asking session (pg_backend_pid): gone = it gave up
    created_at  timestamptz NOT NULL,
    answered_at timestamptz,             -- NULL: not answered yet
    answer      jsonb                    -- the driver's response, as on the control socket
);
CREATE INDEX requests_open ON requests (run_id) WHERE answered_at IS NULL;

CREATE FUNCTION requests_asker() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.role := current_user;
    NEW.backend := pg_backend_pid();
    NEW.created_at := now();
    NEW.answered_at := NULL;
    NEW.answer := NULL;
    RETURN NEW;
END $$;
CREATE TRIGGER requests_asker BEFORE INSERT ON requests
    FOR EACH ROW EXECUTE FUNCTION requests_asker();

-- Deploy locks (`[runbook] lock`): one row per lock name that a run holds or held. A row is
-- free when its run's lease has expired (or the run never took one within `expires_at`).
CREATE TABLE locks (
    name        text PRIMARY KEY,
    run_id      text,                    -- NULL for the moment between taking it and the run's folder
    operator    text        NOT NULL,
    host        text        NOT NULL,
    pid         integer     NOT NULL,
    acquired_at timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL     -- until then the row holds even without a lease
);
