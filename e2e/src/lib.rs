//! edgecd end-to-end support: the Kubernetes API emulator (a test fixture), the dev fleet, and benchmarks.

pub mod bench;
pub mod browser;
pub mod dev;
pub mod emulator;
