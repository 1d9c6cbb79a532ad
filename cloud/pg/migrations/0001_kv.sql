-- The cloud's records: one row per (bucket, key) of cloud.Store. Values are the domain's
-- JSON (bytea: the store moves bytes; views decode them). COLLATE "C" makes SQL order
-- the byte order of Go strings, which Scan and Range rely on.
CREATE TABLE larder_kv (
    bucket text NOT NULL,
    key    text COLLATE "C" NOT NULL,
    value  bytea NOT NULL,
    PRIMARY KEY (bucket, key)
);

-- Buckets some replica watches (pg.Store.Watch): writes to them are announced with
-- pg_notify on channel larder_kv, payload "bucket/key" (an empty key when bucket/key
-- would not fit NOTIFY's 8000-byte payload: anything in the bucket may have changed).
CREATE TABLE larder_watched (
    bucket text PRIMARY KEY
);

CREATE FUNCTION larder_kv_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r record;
    payload text;
BEGIN
    IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
    IF EXISTS (SELECT 1 FROM larder_watched WHERE bucket = r.bucket) THEN
        payload := r.bucket || '/' || r.key;
        IF octet_length(payload) > 7900 THEN
            payload := r.bucket || '/';
        END IF;
        PERFORM pg_notify('larder_kv', payload);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER larder_kv_notify AFTER INSERT OR UPDATE OR DELETE ON larder_kv
    FOR EACH ROW EXECUTE FUNCTION larder_kv_notify();
