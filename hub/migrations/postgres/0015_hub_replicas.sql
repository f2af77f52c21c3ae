-- 0015: where each hub replica answers its peers (docs/hub.md, "Live reads and exec across replicas"): a
-- replica that receives a live read or an exec for a cluster whose stream another replica holds relays the
-- call to that replica's peer address. Each replica writes its own row at start and every minute.

CREATE TABLE hub_replicas (
    id           TEXT PRIMARY KEY,
    peer_address TEXT   NOT NULL,
    seen_at      BIGINT NOT NULL
);
