-- 0016: the spoke stream that owns a cluster's link (docs/hub.md, "Several replicas"). Each stream's handshake
-- writes a fresh id into both tables. `clusters.conn_stream`: that stream's later writes of the connection record
-- (batched heartbeats, Stale, its disconnect) apply only while the id is still its own. `cluster_link.stream`:
-- its status messages are stored only while the id is still its own, so once a newer stream was told where to
-- resume, no older stream can store past that point (and the spoke may resend what it had in flight coalesced,
-- under new sequence numbers).

ALTER TABLE clusters ADD COLUMN conn_stream TEXT NOT NULL DEFAULT '';
ALTER TABLE cluster_link ADD COLUMN stream TEXT NOT NULL DEFAULT '';
