-- 0014: the fleet's deployment record (docs/observability.md): one row per
-- sync or rollback a spoke finished, from its app's history, with the
-- revision it replaced. A spoke may send a deployment again (after a restart
-- or when the hub lost its reports): (cluster, project, app, history_id,
-- started_at) stores it once. Listed newest first by finish time.

CREATE TABLE deployments (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster       TEXT NOT NULL,
    project       TEXT NOT NULL,
    app           TEXT NOT NULL,
    history_id    BIGINT NOT NULL,
    -- 'sync' or 'rollback' (of history entry rollback_of).
    kind          TEXT   NOT NULL,
    rollback_of   BIGINT NOT NULL DEFAULT 0,
    -- Succeeded, Failed or Error.
    result        TEXT   NOT NULL,
    from_revision TEXT   NOT NULL DEFAULT '',
    to_revision   TEXT   NOT NULL DEFAULT '',
    initiated_by  TEXT NOT NULL DEFAULT '',
    automated     BOOLEAN NOT NULL DEFAULT FALSE,
    started_at    BIGINT NOT NULL,
    finished_at   BIGINT NOT NULL,
    trace_id      TEXT   NOT NULL DEFAULT '',
    message       TEXT   NOT NULL DEFAULT '',
    command_id    TEXT   NOT NULL DEFAULT '',
    UNIQUE (cluster, project, app, history_id, started_at)
);
CREATE INDEX deployments_time ON deployments (finished_at, seq);
CREATE INDEX deployments_cluster ON deployments (cluster, finished_at, seq);
CREATE INDEX deployments_app ON deployments (project, app, finished_at, seq);
CREATE INDEX deployments_user ON deployments (initiated_by, finished_at, seq);
