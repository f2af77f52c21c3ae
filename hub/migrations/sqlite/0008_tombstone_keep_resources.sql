-- 0008: an application deleted without cascade keeps its resources in the
-- cluster; its tombstone says so (see the PostgreSQL migration of the same name).
ALTER TABLE app_tombstones ADD COLUMN keep_resources INTEGER NOT NULL DEFAULT 0;
