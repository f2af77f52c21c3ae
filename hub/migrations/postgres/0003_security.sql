-- edgecd hub security (issue 7): the hub CA (key sealed with the master
-- key), one-time bootstrap tokens (hashes only), issued spoke certificates,
-- operator sessions (hashes only) and sealed repository credentials.
-- Timestamps are Unix milliseconds; sealed blobs are base64 TEXT (the same
-- schema as SQLite's).

CREATE TABLE hub_ca (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    cert_pem    TEXT   NOT NULL,
    key_sealed  TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE bootstrap_tokens (
    id           TEXT PRIMARY KEY,
    cluster      TEXT   NOT NULL REFERENCES clusters (name) ON DELETE CASCADE,
    secret_hash  TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT
);
CREATE INDEX bootstrap_tokens_cluster ON bootstrap_tokens (cluster);

CREATE TABLE cluster_certificates (
    serial      TEXT PRIMARY KEY,
    cluster     TEXT   NOT NULL REFERENCES clusters (name) ON DELETE CASCADE,
    not_before  BIGINT NOT NULL,
    not_after   BIGINT NOT NULL,
    issued_at   BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX cluster_certificates_cluster ON cluster_certificates (cluster, not_after);

CREATE TABLE sessions (
    token_hash  TEXT PRIMARY KEY,
    subject     TEXT   NOT NULL,
    groups_json TEXT   NOT NULL DEFAULT '[]',
    admin       BIGINT NOT NULL DEFAULT 0,
    grants_json TEXT   NOT NULL DEFAULT '[]',
    method      TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE repo_credentials (
    url_prefix     TEXT PRIMARY KEY,
    projects_json  TEXT   NOT NULL DEFAULT '[]',
    sealed         TEXT   NOT NULL,
    updated_at     BIGINT NOT NULL
);
