-- 0007: each app label row carries its app's cluster, kept by triggers (see
-- the PostgreSQL migration of the same name).
ALTER TABLE app_labels ADD COLUMN cluster TEXT NOT NULL DEFAULT '';
UPDATE app_labels SET cluster = (SELECT a.cluster FROM applications a WHERE a.id = app_labels.app_id);

-- A label written without a cluster (every path but the bulk import, which
-- names it) takes its app's cluster.
CREATE TRIGGER app_labels_cluster AFTER INSERT ON app_labels
WHEN NEW.cluster = ''
BEGIN
    UPDATE app_labels SET cluster = (SELECT a.cluster FROM applications a WHERE a.id = NEW.app_id)
    WHERE app_id = NEW.app_id AND key = NEW.key;
END;

CREATE TRIGGER app_labels_follow AFTER UPDATE OF cluster ON applications
WHEN OLD.cluster <> NEW.cluster
BEGIN
    UPDATE app_labels SET cluster = NEW.cluster WHERE app_id = NEW.id;
END;

CREATE INDEX app_labels_key_value_cluster ON app_labels (key, value, cluster, app_id);
