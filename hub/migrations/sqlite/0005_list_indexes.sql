-- 0005: indexes for fleet lists (see the PostgreSQL migration of the same
-- name). SQLite indexes always end in the rowid (the app id), so the
-- (cluster) → id lookup is already covered by applications_cluster.

-- A sync filter over resolved clusters sorted by cluster: one ordered range
-- per cluster (the sync column is fixed), and its count from the index alone.
CREATE INDEX applications_cluster_sync ON applications (cluster, sync, project, name);
