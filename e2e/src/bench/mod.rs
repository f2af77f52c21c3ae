//! Benchmarks run by the `edgecd-bench` binary, one module per subcommand.

pub mod list;
pub mod render;
pub mod spoke;
