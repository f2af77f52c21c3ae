-- 0006: exact app counts per (cluster, sync, health), kept by triggers in the
-- same transaction as every change of `applications`, so list totals and
-- dashboard counts over those dimensions are sums over a few rows per
-- cluster instead of counts over every matching app (docs/store.md, "Fleet
-- queries"). Keys include the cluster: a spoke's status batch only touches
-- its own cluster's rows, so concurrent ingest of different clusters never
-- contends on a counter row.
CREATE TABLE app_counts (
    cluster TEXT COLLATE "C" NOT NULL,
    sync    TEXT COLLATE "C" NOT NULL,
    health  TEXT COLLATE "C" NOT NULL,
    n       BIGINT NOT NULL,
    PRIMARY KEY (cluster, sync, health)
);

-- One statement-level trigger per operation, over its transition tables:
-- the changes of a whole statement (an ingest batch is one UPDATE) are
-- summed per key and applied in key order (no deadlock between writers);
-- an UPDATE that changes none of the three columns writes nothing.
CREATE FUNCTION app_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO app_counts (cluster, sync, health, n)
        SELECT cluster, sync, health, count(*) FROM new_rows
        GROUP BY cluster, sync, health ORDER BY cluster, sync, health
        ON CONFLICT (cluster, sync, health) DO UPDATE SET n = app_counts.n + EXCLUDED.n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO app_counts (cluster, sync, health, n)
        SELECT cluster, sync, health, -count(*) FROM old_rows
        GROUP BY cluster, sync, health ORDER BY cluster, sync, health
        ON CONFLICT (cluster, sync, health) DO UPDATE SET n = app_counts.n + EXCLUDED.n;
    ELSE
        INSERT INTO app_counts (cluster, sync, health, n)
        SELECT cluster, sync, health, sum(d) FROM (
            SELECT cluster, sync, health, 1 AS d FROM new_rows
            UNION ALL
            SELECT cluster, sync, health, -1 AS d FROM old_rows
        ) changes
        GROUP BY cluster, sync, health HAVING sum(d) <> 0 ORDER BY cluster, sync, health
        ON CONFLICT (cluster, sync, health) DO UPDATE SET n = app_counts.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER app_counts_insert AFTER INSERT ON applications
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION app_counts_apply();
CREATE TRIGGER app_counts_update AFTER UPDATE ON applications
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION app_counts_apply();
CREATE TRIGGER app_counts_delete AFTER DELETE ON applications
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION app_counts_apply();

-- Filled after the triggers exist: creating them locked `applications`
-- against writers until this migration commits, so nothing is missed.
INSERT INTO app_counts (cluster, sync, health, n)
SELECT cluster, sync, health, count(*) FROM applications GROUP BY cluster, sync, health;

-- A name search within a few projects resolves to app ids from this index
-- alone (index-only scan), before the page query looks up ~100 rows by id.
CREATE INDEX applications_project_name_id ON applications (project, name, id);
