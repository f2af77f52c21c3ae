-- 0012: apps created at an edge (origin other than Managed) are named
-- `name@cluster` after the cluster that reported them, so two clusters'
-- same-named edge apps, and a hub app and an edge app, never share a key
-- (docs/appsets.md, "Identity"). Existing edge rows, the status rows' copy
-- of the name, and the commands and events of those apps are renamed; the
-- audit log is history and keeps the names it was written with.

UPDATE applications SET name = name || '@' || cluster
WHERE origin <> 'Managed' AND instr(name, '@') = 0;

UPDATE app_status SET name = (SELECT a.name FROM applications a WHERE a.id = app_status.app_id)
WHERE app_id IN (SELECT id FROM applications WHERE origin <> 'Managed')
  AND name <> (SELECT a.name FROM applications a WHERE a.id = app_status.app_id);

UPDATE commands SET app = app || '@' || cluster
WHERE app <> '' AND instr(app, '@') = 0
  AND EXISTS (SELECT 1 FROM applications a
              WHERE a.project = commands.project AND a.origin <> 'Managed'
                AND a.name = commands.app || '@' || commands.cluster);

UPDATE events SET app = app || '@' || cluster
WHERE app <> '' AND instr(app, '@') = 0
  AND EXISTS (SELECT 1 FROM applications a
              WHERE a.project = events.project AND a.origin <> 'Managed'
                AND a.name = events.app || '@' || events.cluster);
