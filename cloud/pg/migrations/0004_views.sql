-- Views for operators: the domain's JSON records (larder_kv.value) as columns, for plain
-- SQL (docs/sql.md). They read; nothing writes through them. Times are timestamptz
-- (NULL when the record has none); phone numbers, codes and keys are left out.

CREATE VIEW larder_orders AS
SELECT
    v->>'id'                                   AS id,
    v->>'platform'                             AS platform,
    v->>'external_id'                          AS external_id,
    v->>'site'                                 AS site,
    v->>'state'                                AS state,
    v->>'zone'                                 AS zone,
    ARRAY(SELECT (s->>'compartment')::int FROM jsonb_array_elements(coalesce(v->'slots', '[]')) s) AS compartments,
    v->>'code_delivery'                        AS code_delivery,
    (v->>'created')::timestamptz               AS created_at,
    (v->>'updated')::timestamptz               AS updated_at,
    (v->>'loaded_at')::timestamptz             AS loaded_at,
    (v->>'closed_at')::timestamptz             AS closed_at,
    CASE WHEN v->>'state' = 'picked_up' THEN (v->>'closed_at')::timestamptz END AS picked_up_at,
    (v->>'expires_at')::timestamptz            AS expires_at,
    (v->'window'->>'start')::timestamptz       AS window_start,
    (v->'window'->>'end')::timestamptz         AS window_end,
    v->>'reason'                               AS reason,
    coalesce((v->>'compromised')::boolean, false) AS compromised,
    coalesce((v->>'out_of_temp_seconds')::float8, 0) AS out_of_temp_seconds,
    v->'cold_chain'                            AS cold_chain,
    coalesce((v->>'compromised')::boolean, false)
        OR coalesce((v->'cold_chain'->>'above_seconds')::float8, 0) > 0 AS cold_chain_broken,
    coalesce((v->>'reminders')::int, 0)        AS reminders,
    v->>'replaces'                             AS replaces,
    v->>'replaced_by'                          AS replaced_by,
    v->'refund'                                AS refund
FROM (SELECT convert_from(value, 'UTF8')::jsonb AS v FROM larder_kv WHERE bucket = 'orders') o;

CREATE VIEW larder_sites AS
SELECT
    v->>'id'                                   AS id,
    v->>'name'                                 AS name,
    v->>'address'                              AS address,
    v->>'district'                             AS district,
    v->>'time_zone'                            AS time_zone,
    (v->'location'->>'lat')::float8            AS lat,
    (v->'location'->>'lon')::float8            AS lon,
    coalesce((v->>'provisioned')::boolean, false) AS provisioned,
    coalesce((v->>'online')::boolean, false)   AS online,
    v->>'software'                             AS software,
    (v->>'last_seen')::timestamptz             AS last_seen,
    (v->>'offline_since')::timestamptz         AS offline_since,
    (v->>'desired_version')::bigint            AS desired_version,
    (v->>'edge_desired_version')::bigint       AS edge_desired_version,
    (v->>'event_seq')::bigint                  AS event_seq,
    (v->>'created')::timestamptz               AS created_at
FROM (SELECT convert_from(value, 'UTF8')::jsonb AS v FROM larder_kv WHERE bucket = 'sites') s;

-- The audit log: one row per entry. kind is the entry's action (remote_open,
-- remote_open_loading, picked_up, site_created, …); credential the edge's or the
-- console's credential kind (ops_remote, driver, pickup, …).
CREATE VIEW larder_audit AS
SELECT
    v->>'id'                                   AS id,
    (v->>'time')::timestamptz                  AS time,
    v->>'site'                                 AS site,
    v->>'action'                               AS kind,
    v->>'actor'                                AS actor,
    v->>'role'                                 AS role,
    v->>'credential'                           AS credential,
    v->>'reason'                               AS reason,
    v->>'order'                                AS order_id,
    (v->>'compartment')::int                   AS compartment,
    v->>'command'                              AS command
FROM (SELECT convert_from(value, 'UTF8')::jsonb AS v FROM larder_kv WHERE bucket = 'audit') a;

CREATE VIEW larder_commands AS
SELECT
    v->'command'->>'id'                        AS id,
    v->>'site'                                 AS site,
    v->'command'->>'kind'                      AS kind,
    (v->'command'->>'compartment')::int        AS compartment,
    v->'command'->>'purpose'                   AS purpose,
    v->'command'->>'reason'                    AS reason,
    v->'command'->>'order'                     AS order_id,
    v->'command'->>'actor'                     AS actor,
    v->>'state'                                AS state,
    v->>'error'                                AS error,
    v->>'message'                              AS message,
    (v->>'created')::timestamptz               AS created_at,
    (v->>'updated')::timestamptz               AS updated_at,
    (v->'command'->>'expires_at')::timestamptz AS expires_at
FROM (SELECT convert_from(value, 'UTF8')::jsonb AS v FROM larder_kv WHERE bucket = 'cmds') c;
