-- 0012: apps created at an edge (origin other than Managed) are named
-- `name@cluster` after the cluster that reported them, so two clusters'
-- same-named edge apps, and a hub app and an edge app, never share a key
-- (docs/appsets.md, "Identity"). Existing edge rows, the status rows' copy
-- of the name, and the commands and events of those apps are renamed; the
-- audit log is history and keeps the names it was written with.

UPDATE applications SET name = name || '@' || cluster
WHERE origin <> 'Managed' AND strpos(name, '@') = 0;

UPDATE app_status s SET name = a.name
FROM applications a
WHERE a.id = s.app_id AND a.origin <> 'Managed' AND s.name <> a.name;

UPDATE commands c SET app = c.app || '@' || c.cluster
FROM applications a
WHERE c.app <> '' AND strpos(c.app, '@') = 0
  AND a.project = c.project AND a.origin <> 'Managed'
  AND a.name = c.app || '@' || c.cluster;

UPDATE events e SET app = e.app || '@' || e.cluster
FROM applications a
WHERE e.app <> '' AND strpos(e.app, '@') = 0
  AND a.project = e.project AND a.origin <> 'Managed'
  AND a.name = e.app || '@' || e.cluster;
