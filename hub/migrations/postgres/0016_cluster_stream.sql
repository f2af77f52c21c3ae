-- 0016: the stream a cluster's connection record belongs to (docs/hub.md, "Connection state"): each spoke
-- stream's handshake writes a fresh id here, and that stream's later writes (batched heartbeats, Stale, its
-- disconnect) apply only while the id is still its own, so that a late write of an ended or superseded stream
-- never overwrites what a newer stream recorded, on any replica.

ALTER TABLE clusters ADD COLUMN conn_stream TEXT NOT NULL DEFAULT '';
