-- 0008: an application deleted without cascade keeps its resources in the
-- cluster; its tombstone says so, so that a spoke that was offline when the
-- app was deleted still leaves them in place when it catches up.
ALTER TABLE app_tombstones ADD COLUMN keep_resources BOOLEAN NOT NULL DEFAULT FALSE;
