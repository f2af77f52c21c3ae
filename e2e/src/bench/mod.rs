//! Benchmarks run by the `edgecd-bench` binary, one module per subcommand.

pub mod console;
pub mod fanout;
pub mod ingest;
pub mod list;
pub mod render;
pub mod simspoke;
pub mod spoke;
pub mod streams;
