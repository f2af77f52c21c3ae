-- 0011: an application's reported status moves out of `applications` into
-- `app_status`, one narrow row per app (docs/store.md, "Status table").
--
-- Every status write used to update indexed columns of `applications`
-- (sync, health, updated_at), so no update was HOT and each one added an
-- entry to all twelve indexes of that wide table, and a second row version
-- in `app_status` for the document (the ingest profile: 57 % of the
-- database's CPU in B-tree insertion). Now a status write updates one
-- `app_status` row with four sort indexes; `applications` changes only
-- when the spec does. `app_status` carries copies of the app's project,
-- name and cluster, so a page sorted by a status column is one ordered
-- index range of this table, joined to `applications` by primary key.

-- The counters follow the status rows from now on.
DROP TRIGGER app_counts_insert ON applications;
DROP TRIGGER app_counts_update ON applications;
DROP TRIGGER app_counts_delete ON applications;

ALTER TABLE app_status ALTER COLUMN status DROP NOT NULL;
ALTER TABLE app_status
    ADD COLUMN project          TEXT COLLATE "C",
    ADD COLUMN name             TEXT COLLATE "C",
    ADD COLUMN cluster          TEXT COLLATE "C",
    ADD COLUMN sync             TEXT COLLATE "C" NOT NULL DEFAULT 'Unknown',
    ADD COLUMN health           TEXT COLLATE "C" NOT NULL DEFAULT 'Unknown',
    ADD COLUMN revision         TEXT    NOT NULL DEFAULT '',
    ADD COLUMN operation_phase  TEXT    NOT NULL DEFAULT '',
    ADD COLUMN error_conditions INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN status_version   BIGINT  NOT NULL DEFAULT 0,
    ADD COLUMN updated_at       BIGINT,
    -- Id of the last full status snapshot that reported this app.
    ADD COLUMN snapshot_id      TEXT;

INSERT INTO app_status (app_id, status)
SELECT a.id, NULL FROM applications a
WHERE NOT EXISTS (SELECT 1 FROM app_status s WHERE s.app_id = a.id);
UPDATE app_status s SET project = a.project, name = a.name, cluster = a.cluster, sync = a.sync,
    health = a.health, revision = a.revision, operation_phase = a.operation_phase,
    error_conditions = a.error_conditions, status_version = a.status_version,
    updated_at = a.updated_at, snapshot_id = a.snapshot_id
FROM applications a WHERE a.id = s.app_id;
ALTER TABLE app_status
    ALTER COLUMN project SET NOT NULL,
    ALTER COLUMN name SET NOT NULL,
    ALTER COLUMN cluster SET NOT NULL,
    ALTER COLUMN updated_at SET NOT NULL;

-- Dropping the columns drops their indexes (sync, health, updated,
-- cluster_sync).
ALTER TABLE applications
    DROP COLUMN sync,
    DROP COLUMN health,
    DROP COLUMN revision,
    DROP COLUMN operation_phase,
    DROP COLUMN error_conditions,
    DROP COLUMN status_version,
    DROP COLUMN updated_at,
    DROP COLUMN snapshot_id;

-- One index per status sort key, ending in the (project, name) tiebreak;
-- (cluster, sync, …) serves a cluster-sorted page with one sync status.
CREATE INDEX app_status_sync ON app_status (sync, project, name);
CREATE INDEX app_status_health ON app_status (health, project, name);
CREATE INDEX app_status_updated ON app_status (updated_at, project, name);
CREATE INDEX app_status_cluster_sync ON app_status (cluster, sync, project, name);

-- Every new app gets its status row in the same statement.
CREATE FUNCTION app_status_create() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO app_status (app_id, project, name, cluster, updated_at)
    SELECT id, project, name, cluster, created_at FROM new_rows;
    RETURN NULL;
END
$$;
CREATE TRIGGER app_status_create AFTER INSERT ON applications
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION app_status_create();

-- An app that moves to another cluster takes its status row along (and
-- the counters with it).
CREATE FUNCTION app_status_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE app_status SET cluster = NEW.cluster WHERE app_id = NEW.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER app_status_follow AFTER UPDATE OF cluster ON applications
    FOR EACH ROW WHEN (OLD.cluster IS DISTINCT FROM NEW.cluster)
    EXECUTE FUNCTION app_status_follow();

-- The counters of 0006, now over `app_status` (same function: it reads
-- cluster, sync and health of the transition tables).
CREATE TRIGGER app_counts_insert AFTER INSERT ON app_status
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION app_counts_apply();
CREATE TRIGGER app_counts_update AFTER UPDATE ON app_status
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION app_counts_apply();
CREATE TRIGGER app_counts_delete AFTER DELETE ON app_status
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION app_counts_apply();
