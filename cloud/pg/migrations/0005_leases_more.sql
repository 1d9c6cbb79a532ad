-- Lease renewals without index churn (cloud/lease). Every replica rewrites expires_at of
-- every lease it holds once per renew interval: at 10,000 sites and the default 2 s, 5,000
-- row updates a second across the fleet. While expires_at is indexed none of them can be
-- a HOT update (a new row version in the same page, no new index entries), so each one
-- also writes three index entries and leaves dead ones for vacuum; measured at 3,334 rows
-- per statement, a renewal took 40–120 ms with the index and 10–28 ms without it and with
-- half-empty pages. The claim that used the index scans the fleet's lease rows instead
-- (about 1 ms at 10,000). Renewals change neither owner nor token, so the remaining
-- indexes allow HOT.
DROP INDEX IF EXISTS larder_leases_expires;
ALTER TABLE larder_leases SET (fillfactor = 50);
