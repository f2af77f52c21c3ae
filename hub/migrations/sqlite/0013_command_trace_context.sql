-- 0013: the W3C trace context of the operator action behind a command
-- (`traceparent`, `tracestate`), stored with it so that a command delivered
-- later, after its spoke reconnects, still continues the action's trace
-- (docs/observability.md). Empty for commands issued without one.

ALTER TABLE commands ADD COLUMN traceparent TEXT NOT NULL DEFAULT '';
ALTER TABLE commands ADD COLUMN tracestate TEXT NOT NULL DEFAULT '';
