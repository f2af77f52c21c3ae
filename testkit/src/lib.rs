//! Test harnesses shared by the workspace: a throwaway PostgreSQL server and a git server on loopback.
