-- 3: watchers on other hosts (`runbook attach`) are told what a transaction added when it commits,
-- on the channel `runbook_runs`, one notification per run (and per log) a statement touched, its
-- payload JSON:
--   {"run": ID, "seq": N}                 journal lines up to N are in `events`
--   {"run": ID, "log": "logs/...", "end": B}  the log's first B bytes are in `log_chunks`
--   {"run": ID, "lease": EPOCH}           the lease was taken, renewed, released or taken over
-- A watcher LISTENs, then reads the rows after the last ones it has: no polling.
CREATE FUNCTION runbook_notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('runbook_runs', json_build_object('run', n.run_id, 'seq', max(n.seq))::text)
    FROM new_rows n GROUP BY n.run_id;
    RETURN NULL;
END $$;

CREATE TRIGGER events_notify AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION runbook_notify_events();

CREATE FUNCTION runbook_notify_logs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('runbook_runs',
        json_build_object('run', n.run_id, 'log', n.log, 'end', max(n."offset" + length(n.data)))::text)
    FROM new_rows n GROUP BY n.run_id, n.log;
    RETURN NULL;
END $$;

CREATE TRIGGER log_chunks_notify AFTER INSERT ON log_chunks
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION runbook_notify_logs();

CREATE FUNCTION runbook_notify_lease() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('runbook_runs', json_build_object('run', NEW.run_id, 'lease', NEW.epoch)::text);
    RETURN NULL;
END $$;

CREATE TRIGGER leases_notify AFTER INSERT OR UPDATE ON leases
    FOR EACH ROW EXECUTE FUNCTION runbook_notify_lease();
