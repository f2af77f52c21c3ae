-- 0009: on PostgreSQL the label index of 0007 leads with the cluster, so an
-- app-label selector within resolved clusters is one index descent per
-- cluster (`cluster = ANY(…)` as an index condition) instead of the whole
-- (key, value) range filtered by the cluster list (EXPLAIN ANALYZE: 10,000
-- entries read and 9,100 filtered out for 900 matches). SQLite keeps
-- (key, value, cluster, app_id), where `cluster IN (…)` is already an index
-- constraint. A selector without clusters uses (key, value, app_id) of 0001.
DROP INDEX app_labels_key_value_cluster;
CREATE INDEX app_labels_cluster_key_value ON app_labels (cluster, key, value, app_id);
