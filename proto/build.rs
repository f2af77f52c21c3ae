//! Compiles `edgecd/v1/*.proto` with protox (pure Rust; no system `protoc`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "edgecd/v1/types.proto",
        "edgecd/v1/spoke.proto",
        "edgecd/v1/hub.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["."])?;
    // The descriptors, for tests that walk messages by their schema
    // (tests/stream_vectors/ checks that its samples set every field).
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    std::fs::write(
        out.join("edgecd_v1_descriptors.binpb"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_prost_build::configure()
        .build_client(std::env::var_os("CARGO_FEATURE_CLIENT").is_some())
        .build_server(std::env::var_os("CARGO_FEATURE_SERVER").is_some())
        // `SpokeService.Connect` would clash with the generated `connect`
        // constructor; clients are built with `::new(channel)` instead.
        .build_transport(false)
        .compile_fds(descriptors)?;
    Ok(())
}
