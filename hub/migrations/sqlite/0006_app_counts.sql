-- 0006: exact app counts per (cluster, sync, health), kept by triggers in the
-- same transaction as every change of `applications` (see the PostgreSQL
-- migration of the same name). SQLite has row triggers only; its single
-- writer makes them free of contention.
CREATE TABLE app_counts (
    cluster TEXT NOT NULL,
    sync    TEXT NOT NULL,
    health  TEXT NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (cluster, sync, health)
) WITHOUT ROWID;

INSERT INTO app_counts (cluster, sync, health, n)
SELECT cluster, sync, health, count(*) FROM applications GROUP BY cluster, sync, health;

CREATE TRIGGER app_counts_insert AFTER INSERT ON applications
BEGIN
    INSERT INTO app_counts (cluster, sync, health, n) VALUES (NEW.cluster, NEW.sync, NEW.health, 1)
    ON CONFLICT (cluster, sync, health) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER app_counts_delete AFTER DELETE ON applications
BEGIN
    UPDATE app_counts SET n = n - 1
    WHERE cluster = OLD.cluster AND sync = OLD.sync AND health = OLD.health;
END;

CREATE TRIGGER app_counts_update AFTER UPDATE OF cluster, sync, health ON applications
WHEN OLD.cluster <> NEW.cluster OR OLD.sync <> NEW.sync OR OLD.health <> NEW.health
BEGIN
    UPDATE app_counts SET n = n - 1
    WHERE cluster = OLD.cluster AND sync = OLD.sync AND health = OLD.health;
    INSERT INTO app_counts (cluster, sync, health, n) VALUES (NEW.cluster, NEW.sync, NEW.health, 1)
    ON CONFLICT (cluster, sync, health) DO UPDATE SET n = n + 1;
END;
