-- The notification outbox (cloud/notify.PGQueue): one row per notification, written in the
-- domain's transaction, delivered by whichever replica's worker claims it. Everything an
-- operator asks about is a plain column; what is secret (the phone number or platform id
-- notified, and the event data, which may hold a pickup code) is in target and body,
-- AES-256-GCM sealed under the cloud's notify key when one is configured.
CREATE TABLE larder_notices (
    id            text COLLATE "C" PRIMARY KEY, -- idempotency key and CloudEvent id: '<notice id>/<channel>'
    kind          text NOT NULL,                -- 'loaded', 'reminder', … (CloudEvent type com.larder.order.<kind>)
    channel       text NOT NULL CHECK (channel IN ('webhook', 'sms')),
    order_id      text NOT NULL DEFAULT '',
    site          text NOT NULL DEFAULT '',
    state         text NOT NULL CHECK (state IN ('pending', 'delivered', 'dead', 'cancelled')),
    attempts      integer NOT NULL DEFAULT 0,   -- delivery attempts so far
    next_try      timestamptz,                  -- pending: when it is (next) due; otherwise NULL
    created       timestamptz NOT NULL,         -- when the notice was enqueued
    due           timestamptz NOT NULL,         -- when it was first due
    done_at       timestamptz,                  -- when it left pending: delivered, dead-lettered or cancelled
    delivered_at  timestamptz GENERATED ALWAYS AS (CASE WHEN state = 'delivered' THEN done_at END) STORED,
    last_error    text NOT NULL DEFAULT '',     -- of the last failed attempt; never holds secrets
    lang          text NOT NULL DEFAULT '',     -- SMS language: 'zh', 'en' or '' (both)
    claimed_by    text,                         -- the replica's worker delivering it now, until claimed_until
    claimed_until timestamptz,                  -- after this (database clock) another replica may claim it
    claim         bigint NOT NULL DEFAULT 0,    -- grows on every claim; a settle names the claim it ends
    target        bytea NOT NULL,               -- sealed: platform id (webhook) or phone number (sms)
    body          bytea,                        -- sealed event data; NULL once the notice left pending
    CHECK ((state = 'pending') = (next_try IS NOT NULL)),
    CHECK ((state = 'pending') = (done_at IS NULL)),
    CHECK (state = 'pending' OR body IS NULL)
);
-- Due notices, oldest first (what the workers claim), and the dead letters, newest first.
CREATE INDEX larder_notices_due ON larder_notices (next_try, id) WHERE state = 'pending';
CREATE INDEX larder_notices_dead ON larder_notices (done_at DESC, id) WHERE state = 'dead';
-- Retention: finished notices are purged by age.
CREATE INDEX larder_notices_done ON larder_notices (done_at) WHERE state IN ('delivered', 'cancelled');
-- Ops: the notices of one order.
CREATE INDEX larder_notices_order ON larder_notices (order_id);
