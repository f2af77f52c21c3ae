//! Anti-entropy digests: one hash over the sorted (project, name, version) entries a side holds.

use sha2::{Digest as _, Sha256};

/// Hashes `(project, name, version)` entries in sorted order, so both sides
/// compute the same value for the same content whatever order they hold it in.
pub fn digest<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str, u64)>) -> String {
    let mut sorted: Vec<(&str, &str, u64)> = entries.into_iter().collect();
    sorted.sort_unstable();
    let mut hasher = Sha256::new();
    for (project, name, version) in sorted {
        // Length-prefixed so ("ab","c") and ("a","bc") differ.
        for part in [project, name] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        hasher.update(version.to_be_bytes());
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_independent_and_sensitive_to_content() {
        let a = digest([("p", "a", 1), ("p", "b", 2)]);
        let b = digest([("p", "b", 2), ("p", "a", 1)]);
        assert_eq!(a, b);
        assert_ne!(a, digest([("p", "a", 1), ("p", "b", 3)]));
        assert_ne!(digest([("ab", "c", 1)]), digest([("a", "bc", 1)]));
        assert_eq!(digest([]).len(), 64);
    }
}
