-- edgecd application sets (issue 8): the Argo CD-shaped spec as JSON text,
-- where the set is evaluated ('hub' or a cluster name whose spoke evaluates
-- it) and the last evaluation's status (generated apps, conditions, git
-- commits) as JSON text. Timestamps are Unix milliseconds.

CREATE TABLE application_sets (
    project     TEXT   NOT NULL REFERENCES projects (name),
    name        TEXT   NOT NULL,
    scope       TEXT   NOT NULL DEFAULT 'hub',
    spec        TEXT   NOT NULL,
    status      TEXT   NOT NULL DEFAULT '{}',
    version     BIGINT NOT NULL DEFAULT 1,
    -- The app-of-apps parent that created the set, if any.
    owner_kind     TEXT,
    owner_project  TEXT,
    owner_name     TEXT,
    owner_scope    TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (project, name)
);
CREATE INDEX application_sets_scope ON application_sets (scope);
