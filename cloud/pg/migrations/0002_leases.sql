-- Replicas and leases (cloud/lease). A replica owns a site, or the periodic work, while it
-- holds the lease row; token grows on every change of owner and is the fencing token
-- that transactions written on the lease's behalf check (cloud.Fence).
CREATE TABLE larder_replicas (
    id         text PRIMARY KEY,
    started_at timestamptz NOT NULL DEFAULT now(),
    seen_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE larder_leases (
    name       text PRIMARY KEY,   -- 'site/<site id>' or 'work'
    owner      text NOT NULL,      -- larder_replicas.id
    token      bigint NOT NULL,    -- fencing token: 1, then +1 on every change of owner
    expires_at timestamptz NOT NULL
);
CREATE INDEX larder_leases_owner ON larder_leases (owner);
CREATE INDEX larder_leases_expires ON larder_leases (expires_at);
