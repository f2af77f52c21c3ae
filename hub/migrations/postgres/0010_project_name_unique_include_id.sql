-- 0010: one index instead of two on (project, name). The UNIQUE constraint
-- of 0001 and the covering index (project, name, id) of 0006 hold the same
-- keys; every status write is a non-HOT update that adds an entry to every
-- index of `applications`, so one unique index on (project, name) that
-- carries the id (INCLUDE, for the name-search prefilter's index-only scans)
-- does both jobs for one index entry per write.
ALTER TABLE applications DROP CONSTRAINT applications_project_name_key;
DROP INDEX applications_project_name_id;
CREATE UNIQUE INDEX applications_project_name_key ON applications (project, name) INCLUDE (id);
