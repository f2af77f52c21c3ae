-- 0007: each app label row carries its app's cluster, kept by triggers, so an
-- app-label selector restricted to resolved clusters (connection state,
-- cluster labels) is one index-only range per label over those clusters'
-- entries, instead of a hash join of every app carrying the label with
-- every app of the clusters (docs/store.md, "Fleet queries").
ALTER TABLE app_labels ADD COLUMN cluster TEXT COLLATE "C";
UPDATE app_labels l SET cluster = a.cluster FROM applications a WHERE a.id = l.app_id;
ALTER TABLE app_labels ALTER COLUMN cluster SET NOT NULL;

-- A label written without a cluster (every path but the bulk import, which
-- names it) takes its app's cluster.
CREATE FUNCTION app_labels_cluster() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT cluster INTO NEW.cluster FROM applications WHERE id = NEW.app_id;
    RETURN NEW;
END
$$;
CREATE TRIGGER app_labels_cluster BEFORE INSERT ON app_labels
    FOR EACH ROW WHEN (NEW.cluster IS NULL) EXECUTE FUNCTION app_labels_cluster();

-- An app that moves to another cluster takes its labels along.
CREATE FUNCTION app_labels_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE app_labels SET cluster = NEW.cluster WHERE app_id = NEW.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER app_labels_follow AFTER UPDATE OF cluster ON applications
    FOR EACH ROW WHEN (OLD.cluster IS DISTINCT FROM NEW.cluster)
    EXECUTE FUNCTION app_labels_follow();

CREATE INDEX app_labels_key_value_cluster ON app_labels (key, value, cluster, app_id);
