//! The console's static files (HTML, CSS, JavaScript modules), compiled into the hub binary.
//!
//! Nothing is built or fetched: the files under `hub/console/` are served as
//! they are, so `cargo build` is the whole build. Each response carries a
//! strong ETag (a hash of the content) and `Cache-Control: no-cache`, so a
//! browser revalidates cheaply and never runs a stale console after an
//! upgrade.

use sha2::{Digest, Sha256};

/// One embedded file.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $file:literal, $ty:expr) => {
        Asset {
            path: $path,
            content_type: $ty,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/console/", $file)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// Every file of the console, by URL path.
pub const ASSETS: &[Asset] = &[
    asset!("/", "index.html", "text/html; charset=utf-8"),
    asset!("/console.css", "console.css", "text/css; charset=utf-8"),
    asset!("/js/theme.js", "js/theme.js", JS),
    asset!("/js/main.js", "js/main.js", JS),
    asset!("/js/api.js", "js/api.js", JS),
    asset!("/js/ui.js", "js/ui.js", JS),
    asset!("/js/views/login.js", "js/views/login.js", JS),
    asset!("/js/views/overview.js", "js/views/overview.js", JS),
    asset!("/js/views/apps.js", "js/views/apps.js", JS),
    asset!("/js/views/app.js", "js/views/app.js", JS),
    asset!("/js/views/clusters.js", "js/views/clusters.js", JS),
    asset!("/js/views/cluster.js", "js/views/cluster.js", JS),
    asset!("/js/views/projects.js", "js/views/projects.js", JS),
    asset!("/js/views/appsets.js", "js/views/appsets.js", JS),
    asset!("/js/views/graph.js", "js/views/graph.js", JS),
    asset!("/js/views/events.js", "js/views/events.js", JS),
    asset!("/js/views/deployments.js", "js/views/deployments.js", JS),
    asset!("/js/views/notfound.js", "js/views/notfound.js", JS),
    // Third-party, from the npm registry at the versions vendor/package-lock.json pins (scripts/console-vendor
    // checks they are current); loaded when a terminal first opens.
    asset!("/vendor/xterm/xterm.mjs", "vendor/xterm/xterm.mjs", JS),
    asset!(
        "/vendor/xterm/addon-fit.mjs",
        "vendor/xterm/addon-fit.mjs",
        JS
    ),
    asset!(
        "/vendor/xterm/xterm.css",
        "vendor/xterm/xterm.css",
        "text/css; charset=utf-8"
    ),
    asset!("/vendor/xterm/LICENSE", "vendor/xterm/LICENSE", TEXT),
    asset!(
        "/vendor/xterm/addon-fit.LICENSE",
        "vendor/xterm/addon-fit.LICENSE",
        TEXT
    ),
];

/// The file served at `path` (`/index.html` is `/`).
pub fn find(path: &str) -> Option<&'static Asset> {
    let path = if path == "/index.html" { "/" } else { path };
    ASSETS.iter().find(|a| a.path == path)
}

/// Strong ETag of an asset's content.
pub fn etag(asset: &Asset) -> String {
    let digest = Sha256::digest(asset.body);
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_console_imports_is_embedded() {
        // A module imported by another but missing here would 404 in the
        // browser; check every `from "./x.js"` against the table.
        for asset in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
            let text = std::str::from_utf8(asset.body).unwrap_or_default();
            let dir = asset.path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            for line in text.lines().filter(|l| l.starts_with("import ")) {
                let Some(spec) = line.split('"').nth(1) else {
                    continue;
                };
                let mut parts: Vec<&str> = dir.split('/').collect();
                for seg in spec.split('/') {
                    match seg {
                        "." => {}
                        ".." => {
                            parts.pop();
                        }
                        s => parts.push(s),
                    }
                }
                let resolved = parts.join("/");
                assert!(
                    find(&resolved).is_some(),
                    "{} imports {spec} ({resolved}), which is not embedded",
                    asset.path
                );
            }
        }
    }

    #[test]
    fn every_console_file_is_embedded() {
        // A file added under hub/console/ but not to the table would 404.
        fn walk(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, root, out);
                } else if let Ok(rel) = path.strip_prefix(root) {
                    out.push(format!("/{}", rel.to_string_lossy()));
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("console");
        let mut files = Vec::new();
        walk(&root, &root, &mut files);
        assert!(files.len() > 5, "{files:?}");
        // The vendored packages' pins are for scripts/console-vendor, not the browser.
        for file in files
            .into_iter()
            .filter(|f| !f.starts_with("/vendor/") || !f.ends_with(".json"))
        {
            assert!(find(&file).is_some(), "{file} is not embedded in ASSETS");
        }
    }

    #[test]
    fn every_js_file_starts_with_a_comment() {
        for asset in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
            let text = std::str::from_utf8(asset.body).unwrap_or_default();
            assert!(
                text.starts_with("// "),
                "{} has no one-line comment first",
                asset.path
            );
        }
    }

    #[test]
    fn etags_differ_by_content() {
        let a = find("/").map(etag);
        let b = find("/console.css").map(etag);
        assert!(a.is_some() && b.is_some());
        assert_ne!(a, b);
    }
}
