-- 0017: what application sets' clusterDecisionResource generators read (docs/appsets.md, "Cluster decision
-- resources"): the ConfigMaps that name a duck type (apiVersion 'v1', kind 'ConfigMap', body its data) and the
-- decision resources themselves (Open Cluster Management's PlacementDecisions, …; body their status), applied
-- to the hub by admins. Labels and body are JSON text; updated_at is Unix milliseconds.

CREATE TABLE decision_resources (
    api_version TEXT   NOT NULL,
    kind        TEXT   NOT NULL,
    name        TEXT   NOT NULL,
    labels      TEXT   NOT NULL DEFAULT '{}',
    body        TEXT   NOT NULL DEFAULT '{}',
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (api_version, kind, name)
);
