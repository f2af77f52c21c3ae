-- 0011: an application's reported status moves out of `applications` into
-- `app_status`, one narrow row per app (see the PostgreSQL migration of the
-- same name, and docs/store.md, "Status table"). SQLite cannot relax a NOT
-- NULL column, so `app_status` is rebuilt; its id becomes the rowid.

DROP TRIGGER app_counts_insert;
DROP TRIGGER app_counts_update;
DROP TRIGGER app_counts_delete;

CREATE TABLE app_status_new (
    app_id            INTEGER PRIMARY KEY REFERENCES applications (id) ON DELETE CASCADE,
    project           TEXT    NOT NULL,
    name              TEXT    NOT NULL,
    cluster           TEXT    NOT NULL,
    sync              TEXT    NOT NULL DEFAULT 'Unknown',
    health            TEXT    NOT NULL DEFAULT 'Unknown',
    revision          TEXT    NOT NULL DEFAULT '',
    operation_phase   TEXT    NOT NULL DEFAULT '',
    error_conditions  INTEGER NOT NULL DEFAULT 0,
    status_version    BIGINT  NOT NULL DEFAULT 0,
    updated_at        BIGINT  NOT NULL,
    -- Id of the last full status snapshot that reported this app.
    snapshot_id       TEXT,
    -- Full status document (resources, conditions, operation, history),
    -- NULL until the app is first reported.
    status            TEXT
);
INSERT INTO app_status_new (app_id, project, name, cluster, sync, health, revision,
    operation_phase, error_conditions, status_version, updated_at, snapshot_id, status)
SELECT a.id, a.project, a.name, a.cluster, a.sync, a.health, a.revision, a.operation_phase,
    a.error_conditions, a.status_version, a.updated_at, a.snapshot_id, s.status
FROM applications a LEFT JOIN app_status s ON s.app_id = a.id;
DROP TABLE app_status;
ALTER TABLE app_status_new RENAME TO app_status;

DROP INDEX applications_sync;
DROP INDEX applications_health;
DROP INDEX applications_updated;
DROP INDEX applications_cluster_sync;
ALTER TABLE applications DROP COLUMN sync;
ALTER TABLE applications DROP COLUMN health;
ALTER TABLE applications DROP COLUMN revision;
ALTER TABLE applications DROP COLUMN operation_phase;
ALTER TABLE applications DROP COLUMN error_conditions;
ALTER TABLE applications DROP COLUMN status_version;
ALTER TABLE applications DROP COLUMN updated_at;
ALTER TABLE applications DROP COLUMN snapshot_id;

CREATE INDEX app_status_sync ON app_status (sync, project, name);
CREATE INDEX app_status_health ON app_status (health, project, name);
CREATE INDEX app_status_updated ON app_status (updated_at, project, name);
CREATE INDEX app_status_cluster_sync ON app_status (cluster, sync, project, name);

-- Every new app gets its status row; an app that moves takes it along.
CREATE TRIGGER app_status_create AFTER INSERT ON applications
BEGIN
    INSERT INTO app_status (app_id, project, name, cluster, updated_at)
    VALUES (NEW.id, NEW.project, NEW.name, NEW.cluster, NEW.created_at);
END;

CREATE TRIGGER app_status_follow AFTER UPDATE OF cluster ON applications
WHEN OLD.cluster <> NEW.cluster
BEGIN
    UPDATE app_status SET cluster = NEW.cluster WHERE app_id = NEW.id;
END;

-- The counters of 0006, now over `app_status`. An app's status row is
-- deleted before the app, so the delete counter runs whatever the
-- foreign-key settings (the cascade then finds nothing).
CREATE TRIGGER app_status_delete BEFORE DELETE ON applications
BEGIN
    DELETE FROM app_status WHERE app_id = OLD.id;
END;

CREATE TRIGGER app_counts_insert AFTER INSERT ON app_status
BEGIN
    INSERT INTO app_counts (cluster, sync, health, n) VALUES (NEW.cluster, NEW.sync, NEW.health, 1)
    ON CONFLICT (cluster, sync, health) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER app_counts_delete AFTER DELETE ON app_status
BEGIN
    UPDATE app_counts SET n = n - 1
    WHERE cluster = OLD.cluster AND sync = OLD.sync AND health = OLD.health;
END;

CREATE TRIGGER app_counts_update AFTER UPDATE OF cluster, sync, health ON app_status
WHEN OLD.cluster <> NEW.cluster OR OLD.sync <> NEW.sync OR OLD.health <> NEW.health
BEGIN
    UPDATE app_counts SET n = n - 1
    WHERE cluster = OLD.cluster AND sync = OLD.sync AND health = OLD.health;
    INSERT INTO app_counts (cluster, sync, health, n) VALUES (NEW.cluster, NEW.sync, NEW.health, 1)
    ON CONFLICT (cluster, sync, health) DO UPDATE SET n = n + 1;
END;
