//! Bounded fuzzing in ordinary `cargo test`: the fuzz entry points over a seed corpus and mutations of it.
//!
//! The seeds are every YAML file of the conformance fixtures plus a few hand-written edge cases; each seed
//! is mutated deterministically (byte flips, insertions, truncations, splices). Run longer with
//! `FUZZ_ITERATIONS=100000 cargo test -p edgecd-render --test parser_properties`.

#![allow(clippy::unwrap_used, reason = "test code")]

use std::path::{Path, PathBuf};

use edgecd_render::fuzzing::{parse_kustomization, yaml_round_trip};

const EDGE_CASES: &[&str] = &[
    "a: 'x'\nb: \"y\\n z\"\nc: |\n  l1\n\n  l2\n",
    "- - - a\n  - []\n- {}\n",
    "k: \"\\t lead\"\nn: \"\\u0085\"\nu: \"\\U0001F600\"\n",
    "? [a]\n: b\n",
    "x: &a [1, *a]\n",
    "a: 0x1F\nb: 0o17\nc: 1e3\nd: -.5\ne: .inf\nf: 1:20\n",
    "key with spaces: v\n'#': \"@\"\n\"\": empty\n",
];

fn seeds() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = EDGE_CASES.iter().map(|s| s.as_bytes().to_vec()).collect();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/kustomize");
    let mut files = Vec::new();
    collect(&fixtures, &mut files);
    assert!(!files.is_empty(), "no seeds under {}", fixtures.display());
    files.sort();
    out.extend(files.iter().filter_map(|f| std::fs::read(f).ok()));
    out
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml")
            && !path.ends_with("133-error-yaml-alias-bomb/input/lol.yaml")
        {
            out.push(path);
        }
    }
}

/// xorshift64*: deterministic, dependency-free randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const INTERESTING: &[&[u8]] = &[
    b":",
    b"- ",
    b"\n",
    b"  ",
    b"&a ",
    b"*a",
    b"'",
    b"\"",
    b"#",
    b"|",
    b">",
    b"{",
    b"[",
    b"$patch: delete",
    b"<<: ",
    b"---\n",
    b"\t",
    b"\\",
];

fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let pos = rng.below(data.len() + 1);
        match rng.below(5) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] = rng.next() as u8;
            }
            1 => {
                let token = INTERESTING[rng.below(INTERESTING.len())];
                data.splice(pos..pos, token.iter().copied());
            }
            2 => data.truncate(pos),
            3 if !data.is_empty() => {
                let end = (pos + rng.below(16)).min(data.len());
                data.drain(pos.min(end)..end);
            }
            _ => {
                let start = rng.below(other.len() + 1);
                let end = (start + rng.below(64)).min(other.len());
                data.splice(pos..pos, other[start..end].iter().copied());
            }
        }
    }
    data
}

fn iterations() -> usize {
    std::env::var("FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
}

#[test]
fn yaml_loader_and_emitter_round_trip_on_mutated_inputs() {
    let seeds = seeds();
    for seed in &seeds {
        yaml_round_trip(seed);
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..iterations() {
        let seed = &seeds[rng.below(seeds.len())];
        let other = &seeds[rng.below(seeds.len())];
        yaml_round_trip(&mutate(&mut rng, seed, other));
    }
}

#[test]
fn kustomization_parser_never_panics_on_mutated_inputs() {
    let seeds = seeds();
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    for _ in 0..iterations() {
        let seed = &seeds[rng.below(seeds.len())];
        let other = &seeds[rng.below(seeds.len())];
        parse_kustomization(&mutate(&mut rng, seed, other));
    }
}

/// Inputs on which `cargo fuzz` once failed (`render/fuzz/regressions/<target>/`, one file each, named for
/// the bug): a key the emitter wrote as a simple key too long to read back, keys whose go-yaml order is not
/// a total order (the standard sort panicked). Each must now pass its target.
#[test]
fn fuzzer_findings_stay_fixed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut replayed = 0;
    for (target, run) in [
        ("yaml_loader", yaml_round_trip as fn(&[u8])),
        ("kustomization_parser", parse_kustomization),
    ] {
        let mut files = Vec::new();
        if let Ok(entries) = std::fs::read_dir(root.join(target)) {
            files.extend(entries.flatten().map(|e| e.path()));
        }
        files.sort();
        for file in files {
            run(&std::fs::read(&file).unwrap());
            replayed += 1;
        }
    }
    assert!(replayed >= 2, "no fuzzer findings under {}", root.display());
}
