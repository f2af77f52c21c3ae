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
    fn etags_differ_by_content() {
        let a = find("/").map(etag);
        let b = find("/console.css").map(etag);
        assert!(a.is_some() && b.is_some());
        assert_ne!(a, b);
    }
}
