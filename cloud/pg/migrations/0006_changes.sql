-- The change feed of watched buckets (pg.Store.Watch), in place of NOTIFY. NOTIFY takes a
-- database-wide lock in the committing transaction and holds it until its commit record
-- is flushed, so every transaction writing a watched bucket waited for the previous one's
-- WAL flush: measured with 2 replicas creating orders, about half of the busy backends
-- sampled in pg_stat_activity waited on that lock (wait_event 'object'). A row in a table
-- commits with the transaction that wrote it and takes no lock beyond its own index
-- entry, so commits share WAL flushes again, and a change cannot be lost between commit
-- and announcement.
--
-- xid is the writing transaction's id: a watcher reads the rows of the transactions below
-- the oldest one still running (pg_snapshot_xmin), which have all ended, so it never skips
-- a row that commits later. Two transactions that write one key commit in xid order
-- (REPEATABLE READ fails the one that would overtake), so a watcher reading in xid order
-- sees each key's writes in commit order. Keys too long for an index entry are recorded as
-- '': anything in the bucket may have changed. Watchers delete rows older than they keep.
DROP TRIGGER larder_kv_notify ON larder_kv;
DROP FUNCTION larder_kv_notify();

CREATE TABLE larder_changes (
    xid    xid8 NOT NULL,
    bucket text NOT NULL,
    key    text COLLATE "C" NOT NULL,
    PRIMARY KEY (xid, bucket, key)
);

-- One statement per write statement (not one per row): the transition table holds the
-- rows the statement wrote.
CREATE FUNCTION larder_kv_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO larder_changes (xid, bucket, key)
    SELECT pg_current_xact_id(), c.bucket, CASE WHEN octet_length(c.key) > 1000 THEN '' ELSE c.key END
    FROM changed c WHERE c.bucket IN (SELECT bucket FROM larder_watched)
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

-- A trigger with a transition table handles one kind of event, hence three.
CREATE TRIGGER larder_kv_inserted AFTER INSERT ON larder_kv
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION larder_kv_changed();
CREATE TRIGGER larder_kv_updated AFTER UPDATE ON larder_kv
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION larder_kv_changed();
CREATE TRIGGER larder_kv_deleted AFTER DELETE ON larder_kv
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION larder_kv_changed();
