//! The committed golden encodings of the hub-spoke stream messages (`proto/testdata/stream/`, docs/protocol.md#test-vectors), read for the tests that decode them on the hub's and the spoke's side.

use std::path::{Path, PathBuf};

/// The version directories (`v<major>.<minor>`) of protocol major `major`, sorted.
pub fn version_dirs(major: u32) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto/testdata/stream");
    let prefix = format!("v{major}.");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.is_dir()
                && path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
        })
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no vectors under {}", root.display());
    dirs
}

/// The vectors of `dir` whose file name starts with `prefix` (`hub_`, `spoke_`): name (file stem), path and
/// the bytes (the file's hex, after its `#` comment lines).
pub fn read(dir: &Path, prefix: &str) -> Vec<(String, PathBuf, Vec<u8>)> {
    let mut vectors = Vec::new();
    for path in std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
    {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !name.starts_with(prefix) {
            continue;
        }
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let hex: String = text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .flat_map(str::chars)
            .filter(|c| !c.is_whitespace())
            .collect();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| {
                hex.get(i..i + 2)
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                    .unwrap_or_else(|| panic!("{}: not hex at {i}", path.display()))
            })
            .collect();
        vectors.push((name, path, bytes));
    }
    vectors
}
