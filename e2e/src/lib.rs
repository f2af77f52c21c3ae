//! edgecd end-to-end support: the test harness that runs each spoke scenario on the emulator and on a real cluster (the dev fleet lives in `dev/`, the Kubernetes API emulator in `emulator/`, the benchmarks in `bench/`; the first two are re-exported here), `images`, the container images' Dockerfile as the tests read it, and `pod`, a chart's container started as its pod spec says.

pub mod harness;
pub mod images;
pub mod pod;

/// The local dev fleet (`dev/`, crate `edgecd-dev`).
pub use edgecd_dev as dev;

/// The Kubernetes API emulator (`emulator/`, crate `edgecd-kube-emulator`).
pub use edgecd_kube_emulator as emulator;

/// The repository's `testdata/` folder: the fixtures that the tests, the benchmarks and the dev fleet read.
pub use edgecd_testkit::testdata;
