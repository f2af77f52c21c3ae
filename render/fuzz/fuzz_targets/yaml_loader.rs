//! Fuzz target: the YAML loader plus the emit/load round trip.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    edgecd_render::fuzzing::yaml_round_trip(data);
});
