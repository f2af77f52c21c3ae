-- 0005: indexes for fleet lists, chosen from EXPLAIN ANALYZE of the list
-- benchmark's scenarios (docs/benchmarks.md#list). With a current visibility
-- map (the store's `analyze` runs VACUUM ANALYZE after bulk imports; autovacuum
-- otherwise), both serve their queries as index-only scans.

-- Cluster → app ids: the app-label prefilter restricted to the resolved
-- clusters joins this instead of visiting ~10 % of the table's heap pages.
CREATE INDEX applications_cluster_id ON applications (cluster, id);

-- A sync filter over resolved clusters sorted by cluster: one ordered range
-- per cluster (the sync column is fixed), and its count without the heap.
CREATE INDEX applications_cluster_sync ON applications (cluster, sync, project, name);
