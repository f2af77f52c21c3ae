//! Fuzz target: the kustomization parser.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    edgecd_render::fuzzing::parse_kustomization(data);
});
