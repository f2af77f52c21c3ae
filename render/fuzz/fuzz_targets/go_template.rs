//! Fuzz target: the Go-template engine of ApplicationSets (`edgecd-gotmpl`), parse and execute, under tight limits.
#![no_main]

use std::sync::OnceLock;

fn data() -> &'static serde_json::Value {
    static DATA: OnceLock<serde_json::Value> = OnceLock::new();
    DATA.get_or_init(|| {
        serde_json::json!({
            "name": "edge-1",
            "n": 3,
            "f": 2.5,
            "on": true,
            "list": ["a", "b", 1, null],
            "path": {"path": "apps/web", "basename": "web", "segments": ["apps", "web"]},
            "metadata": {"labels": {"zone": "eu", "tier": "edge"}},
            "values": {"yaml": "a: 1\nb: [1, 2]\n"}
        })
    })
}

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let options = edgecd_gotmpl::Options {
        max_output_bytes: 64 * 1024,
        max_steps: 100_000,
        ..edgecd_gotmpl::Options::default()
    };
    // Errors are expected; a panic, a hang or unbounded memory is a finding.
    let _ = edgecd_gotmpl::render(text, data(), &options);
});
