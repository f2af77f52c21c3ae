-- edgecd hub fleet store, PostgreSQL. Timestamps are Unix milliseconds
-- (BIGINT) so both backends compare and sort identically; names use the "C"
-- collation so ordering is bytewise, as in SQLite.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE projects (
    name        TEXT COLLATE "C" PRIMARY KEY,
    spec        JSONB  NOT NULL,
    version     BIGINT NOT NULL DEFAULT 1,
    created_at  BIGINT NOT NULL
);

CREATE TABLE clusters (
    name                   TEXT COLLATE "C" PRIMARY KEY,
    labels                 JSONB  NOT NULL DEFAULT '{}',
    annotations            JSONB  NOT NULL DEFAULT '{}',
    server_url             TEXT   NOT NULL DEFAULT '',
    versions               JSONB  NOT NULL DEFAULT '{}',
    conn_state             TEXT   NOT NULL DEFAULT 'Pending',
    conn_since             BIGINT,
    last_heartbeat         BIGINT,
    hub_replica            TEXT   NOT NULL DEFAULT '',
    certificate_not_after  BIGINT,
    revoked_at             BIGINT,
    created_at             BIGINT NOT NULL,
    version                BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX clusters_conn_state ON clusters (conn_state, name);

-- One row per label: selectors become indexed semi-joins.
CREATE TABLE cluster_labels (
    cluster TEXT COLLATE "C" NOT NULL REFERENCES clusters (name) ON DELETE CASCADE,
    key     TEXT COLLATE "C" NOT NULL,
    value   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (cluster, key)
);
CREATE INDEX cluster_labels_key_value ON cluster_labels (key, value, cluster);

-- Per-cluster link state. No foreign key: apps may target a cluster before
-- it is registered, and their desired-set versions must already count.
CREATE TABLE cluster_link (
    cluster          TEXT COLLATE "C" PRIMARY KEY,
    spoke_epoch      TEXT   NOT NULL DEFAULT '',
    spoke_seq        BIGINT NOT NULL DEFAULT 0,
    desired_version  BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE applications (
    id                BIGSERIAL PRIMARY KEY,
    uid               TEXT   NOT NULL UNIQUE,
    project           TEXT COLLATE "C" NOT NULL REFERENCES projects (name),
    name              TEXT COLLATE "C" NOT NULL,
    spec              JSONB  NOT NULL,
    labels            JSONB  NOT NULL DEFAULT '{}',
    origin            TEXT   NOT NULL,
    owner_kind        TEXT COLLATE "C",
    owner_project     TEXT COLLATE "C",
    owner_name        TEXT COLLATE "C",
    owner_scope       TEXT COLLATE "C",
    spec_version      BIGINT NOT NULL DEFAULT 1,
    cluster           TEXT COLLATE "C" NOT NULL,
    namespace         TEXT   NOT NULL DEFAULT '',
    repo_url          TEXT   NOT NULL DEFAULT '',
    path              TEXT   NOT NULL DEFAULT '',
    target_revision   TEXT   NOT NULL DEFAULT '',
    automated         BOOLEAN NOT NULL DEFAULT FALSE,
    desired_version   BIGINT NOT NULL DEFAULT 0,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    -- Status, denormalised for filtering and sorting.
    sync              TEXT COLLATE "C" NOT NULL DEFAULT 'Unknown',
    health            TEXT COLLATE "C" NOT NULL DEFAULT 'Unknown',
    revision          TEXT   NOT NULL DEFAULT '',
    operation_phase   TEXT   NOT NULL DEFAULT '',
    error_conditions  INTEGER NOT NULL DEFAULT 0,
    status_version    BIGINT NOT NULL DEFAULT 0,
    -- Id of the last full status snapshot that reported this app.
    snapshot_id       TEXT,
    UNIQUE (project, name)
);
-- One index per sort key, ending in the (project, name) tiebreak, so every
-- sorted page is an index range scan.
CREATE INDEX applications_name ON applications (name, project);
CREATE INDEX applications_cluster ON applications (cluster, project, name);
CREATE INDEX applications_sync ON applications (sync, project, name);
CREATE INDEX applications_health ON applications (health, project, name);
CREATE INDEX applications_updated ON applications (updated_at, project, name);
CREATE INDEX applications_desired ON applications (cluster, desired_version) WHERE origin = 'Managed';
CREATE INDEX applications_owner ON applications (owner_kind, owner_project, owner_name) WHERE owner_kind IS NOT NULL;
CREATE INDEX applications_name_trgm ON applications USING gin (name gin_trgm_ops);

CREATE TABLE app_labels (
    app_id  BIGINT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    key     TEXT COLLATE "C" NOT NULL,
    value   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (app_id, key)
);
CREATE INDEX app_labels_key_value ON app_labels (key, value, app_id);

-- Full status (resources, conditions, operation, history): read by get, never by lists.
CREATE TABLE app_status (
    app_id  BIGINT PRIMARY KEY REFERENCES applications (id) ON DELETE CASCADE,
    status  JSONB NOT NULL
);

CREATE TABLE app_trees (
    app_id      BIGINT PRIMARY KEY REFERENCES applications (id) ON DELETE CASCADE,
    tree        JSONB  NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- Deleted (or moved-away) managed apps, so a spoke can catch up with one
-- "changes since version V" query.
CREATE TABLE app_tombstones (
    cluster          TEXT COLLATE "C" NOT NULL,
    project          TEXT COLLATE "C" NOT NULL,
    name             TEXT COLLATE "C" NOT NULL,
    uid              TEXT   NOT NULL,
    desired_version  BIGINT NOT NULL,
    deleted_at       BIGINT NOT NULL,
    PRIMARY KEY (cluster, project, name)
);
CREATE INDEX app_tombstones_version ON app_tombstones (cluster, desired_version);

CREATE TABLE commands (
    seq           BIGSERIAL PRIMARY KEY,
    id            TEXT   NOT NULL UNIQUE,
    project       TEXT COLLATE "C" NOT NULL,
    app           TEXT COLLATE "C" NOT NULL,
    cluster       TEXT COLLATE "C" NOT NULL,
    kind          TEXT   NOT NULL,
    payload       JSONB  NOT NULL,
    issued_by     TEXT   NOT NULL,
    issued_at     BIGINT NOT NULL,
    deadline      BIGINT NOT NULL,
    outcome       TEXT   NOT NULL DEFAULT 'Pending',
    message       TEXT   NOT NULL DEFAULT '',
    result        JSONB,
    delivered_at  BIGINT,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX commands_open ON commands (cluster, seq) WHERE outcome IN ('Pending', 'Delivered');
CREATE INDEX commands_deadline ON commands (deadline) WHERE outcome IN ('Pending', 'Delivered');
CREATE INDEX commands_app ON commands (project, app, seq);
CREATE INDEX commands_cluster ON commands (cluster, seq);

CREATE TABLE events (
    seq       BIGSERIAL PRIMARY KEY,
    cluster   TEXT COLLATE "C" NOT NULL,
    id        TEXT   NOT NULL,
    project   TEXT COLLATE "C" NOT NULL DEFAULT '',
    app       TEXT COLLATE "C" NOT NULL DEFAULT '',
    resource  TEXT   NOT NULL DEFAULT '',
    severity  TEXT   NOT NULL,
    reason    TEXT   NOT NULL DEFAULT '',
    message   TEXT   NOT NULL DEFAULT '',
    time      BIGINT NOT NULL,
    UNIQUE (cluster, id)
);
CREATE INDEX events_cluster ON events (cluster, seq);
CREATE INDEX events_app ON events (project, app, seq);

CREATE TABLE audit_log (
    seq      BIGSERIAL PRIMARY KEY,
    actor    TEXT   NOT NULL,
    action   TEXT   NOT NULL,
    target   TEXT   NOT NULL,
    source   TEXT   NOT NULL DEFAULT '',
    result   TEXT   NOT NULL,
    message  TEXT   NOT NULL DEFAULT '',
    time     BIGINT NOT NULL
);

CREATE TABLE users (
    name           TEXT COLLATE "C" PRIMARY KEY,
    password_hash  TEXT,
    admin          BOOLEAN NOT NULL DEFAULT FALSE,
    roles          JSONB   NOT NULL DEFAULT '[]',
    created_at     BIGINT  NOT NULL,
    version        BIGINT  NOT NULL DEFAULT 1
);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    owner        TEXT COLLATE "C" NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    description  TEXT   NOT NULL DEFAULT '',
    token_hash   TEXT   NOT NULL UNIQUE,
    roles        JSONB  NOT NULL DEFAULT '[]',
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX api_tokens_owner ON api_tokens (owner);
