//! Chart packages (`.tgz`) and OCI artifact layers (tar, gzipped or not) read in-process and chart directories copied, all bounded: total bytes, entry count, only plain files and directories (links and devices are skipped, never created), no absolute paths and no `..`.

use std::cell::Cell;
use std::collections::HashSet;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

/// Bounds of unpacking a package or copying a chart directory.
#[derive(Debug, Clone, Copy)]
pub struct ChartLimits {
    /// Dependencies one chart may declare in `Chart.yaml`.
    pub max_dependencies: usize,
    /// Bytes a package may unpack to (the tar stream, headers included), or a chart directory copy may hold.
    pub max_unpacked_bytes: u64,
    /// Entries (files and directories) of a package or a chart directory copy.
    pub max_entries: usize,
    /// Largest `Chart.yaml` or `Chart.lock` read.
    pub max_metadata_bytes: usize,
}

impl Default for ChartLimits {
    fn default() -> Self {
        Self {
            max_dependencies: 64,
            max_unpacked_bytes: 128 * 1024 * 1024,
            max_entries: 10_000,
            max_metadata_bytes: 1024 * 1024,
        }
    }
}

/// Why a package could not be read or a chart directory copied. Names the chart and the entry, never a path
/// of this host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("chart {chart}: {reason}")]
pub struct PackageError {
    pub chart: String,
    pub reason: String,
}

/// What a chart holds besides its templates: its `Chart.yaml` and `Chart.lock` texts and what is vendored in
/// its `charts/` directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChartFiles {
    pub chart_yaml: Option<String>,
    pub chart_lock: Option<String>,
    /// `name` of each `charts/<dir>/Chart.yaml` (vendored chart directories).
    pub vendored_dirs: Vec<String>,
    /// File names of the archives in `charts/` (`<name>-<version>.tgz`).
    pub vendored_archives: Vec<String>,
}

/// What a tar entry is, as far as charts go.
enum Kind {
    File,
    Dir,
    Other,
}

/// Deepest path (in components) an archive entry may have.
const MAX_DEPTH: usize = 64;

/// How an archive is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A packaged chart: gzipped, one top directory (stripped).
    Chart,
    /// An OCI artifact's content layer, gzipped or not, its entries as they are.
    Tree { gzip: bool },
}

/// Reads a package's entries (for a chart, the first path component, the chart's top directory, stripped) and
/// hands each plain file and directory to `visit`. Returns the top directory's name (empty for a tree).
fn walk(
    package: &Path,
    label: &str,
    limits: ChartLimits,
    layout: Layout,
    mut visit: impl FnMut(&Path, Kind, &mut dyn Read) -> Result<(), String>,
) -> Result<String, PackageError> {
    let fail = |reason: String| PackageError {
        chart: label.to_owned(),
        reason,
    };
    let file =
        std::fs::File::open(package).map_err(|e| fail(format!("reading the package: {e}")))?;
    let exceeded = Rc::new(Cell::new(false));
    let reader: Box<dyn Read> = match layout {
        Layout::Tree { gzip: false } => Box::new(std::io::BufReader::new(file)),
        // Every gzip member, as helm reads them (a second member would otherwise be seen by helm only).
        Layout::Chart | Layout::Tree { gzip: true } => Box::new(flate2::read::MultiGzDecoder::new(
            std::io::BufReader::new(file),
        )),
    };
    let bounded = Bounded {
        inner: reader,
        left: limits.max_unpacked_bytes,
        exceeded: Rc::clone(&exceeded),
    };
    let too_large = || format!("unpacks to more than {} bytes", limits.max_unpacked_bytes);
    let io = |what: &str, e: std::io::Error| {
        if exceeded.get() {
            too_large()
        } else {
            format!("{what}: {e}")
        }
    };
    let mut archive = tar::Archive::new(bounded);
    let mut top: Option<String> = None;
    // Whether `top` is a directory (a file beside the chart names it only until a directory is seen).
    let mut top_is_dir = false;
    let entries = archive
        .entries()
        .map_err(|e| fail(io("not a gzipped tar archive", e)))?;
    // Every directory an entry implies (its parents are created too), bounded like the entries: a few
    // entries with deep paths must not create millions of directories.
    let mut implied: HashSet<PathBuf> = HashSet::new();
    for (i, entry) in entries.enumerate() {
        if i >= limits.max_entries {
            return Err(fail(format!("more than {} entries", limits.max_entries)));
        }
        let mut entry = entry.map_err(|e| fail(io("reading the archive", e)))?;
        let entry_type = entry.header().entry_type();
        let kind = match entry_type {
            tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
            tar::EntryType::Directory => Kind::Dir,
            _ => Kind::Other,
        };
        let raw = entry.path_bytes().into_owned();
        let shown = shown_name(&raw);
        let path = entry
            .path()
            .map_err(|e| fail(format!("entry {shown}: {e}")))?
            .into_owned();
        let mut parts = Vec::new();
        for component in path.components() {
            match component {
                Component::Normal(part) => parts.push(part.to_owned()),
                Component::CurDir => {}
                Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                    return Err(fail(format!(
                        "entry {shown} is absolute or leaves the chart (..)"
                    )));
                }
            }
        }
        if parts.len() > MAX_DEPTH {
            return Err(fail(format!(
                "entry {shown} is nested deeper than {MAX_DEPTH} directories"
            )));
        }
        if !matches!(kind, Kind::Other) {
            let depth = if matches!(kind, Kind::Dir) {
                parts.len()
            } else {
                parts.len().saturating_sub(1)
            };
            for n in 1..=depth {
                implied.insert(parts[..n].iter().collect());
            }
            if implied.len() > limits.max_entries {
                return Err(fail(format!(
                    "its paths make more than {} directories",
                    limits.max_entries
                )));
            }
        }
        if let Layout::Tree { .. } = layout {
            // A link in an artifact would make a file disappear from the render (links are never created):
            // refused, naming it, rather than dropped.
            if matches!(entry_type, tar::EntryType::Symlink | tar::EntryType::Link) {
                return Err(fail(format!(
                    "entry {shown} is a link; links are not unpacked (archive the file itself)"
                )));
            }
            if parts.is_empty() || matches!(kind, Kind::Other) {
                continue;
            }
            let relative: PathBuf = parts.iter().collect();
            visit(&relative, kind, &mut entry)
                .map_err(|reason| fail(format!("entry {shown}: {reason}")))?;
            top.get_or_insert_with(String::new);
            continue;
        }
        let Some((first, rest)) = parts.split_first() else {
            continue;
        };
        let first = first.to_string_lossy();
        if !rest.is_empty() || matches!(kind, Kind::Dir) {
            // One chart directory: helm strips the first component of every entry, so entries under two top
            // directories would be merged into one chart that this reader and helm would see differently.
            match &top {
                Some(top) if *top != first && top_is_dir => {
                    return Err(fail(format!(
                        "more than one top-level directory ({top}, {first})"
                    )));
                }
                Some(_) if top_is_dir => {}
                _ => {
                    top = Some(first.into_owned());
                    top_is_dir = true;
                }
            }
        } else if top.is_none() {
            top = Some(first.into_owned());
        }
        if rest.is_empty() {
            // The top directory itself, or a file beside it (Helm ignores those too).
            continue;
        }
        if matches!(kind, Kind::Other) {
            tracing::debug!(chart = %label, entry = %shown, "Chart package entry skipped: not a plain file or directory.");
            continue;
        }
        let relative: PathBuf = rest.iter().collect();
        visit(&relative, kind, &mut entry)
            .map_err(|reason| fail(format!("entry {shown}: {reason}")))?;
    }
    if exceeded.get() {
        return Err(fail(too_large()));
    }
    top.ok_or_else(|| fail("the package is empty".into()))
}

/// Unpacks `package` under `dest` (which should be fresh and private); returns the chart's directory
/// (`dest/<top directory>`).
pub fn unpack(
    package: &Path,
    dest: &Path,
    label: &str,
    limits: ChartLimits,
) -> Result<PathBuf, PackageError> {
    let chart = dest.join("chart");
    create_scratch(&chart, label)?;
    walk(
        package,
        label,
        limits,
        Layout::Chart,
        |relative, kind, reader| write_entry(&chart, relative, kind, reader),
    )?;
    Ok(chart)
}

/// Unpacks an OCI artifact's content layer `package` (a tar, gzipped when `gzip`) under `dest` (fresh and
/// private), entries where the archive puts them: only plain files and directories, within the limits, none
/// absolute or leaving `dest`.
pub fn unpack_tree(
    package: &Path,
    dest: &Path,
    label: &str,
    limits: ChartLimits,
    gzip: bool,
) -> Result<(), PackageError> {
    create_scratch(dest, label)?;
    walk(
        package,
        label,
        limits,
        Layout::Tree { gzip },
        |relative, kind, reader| write_entry(dest, relative, kind, reader),
    )?;
    Ok(())
}

/// Creates the directory an archive is unpacked into.
fn create_scratch(dir: &Path, label: &str) -> Result<(), PackageError> {
    std::fs::create_dir_all(dir).map_err(|e| PackageError {
        chart: label.to_owned(),
        reason: format!("creating the scratch directory: {e}"),
    })
}

/// Creates one checked entry (a relative path of normal components) under `root`.
fn write_entry(
    root: &Path,
    relative: &Path,
    kind: Kind,
    reader: &mut dyn Read,
) -> Result<(), String> {
    let target = root.join(relative);
    match kind {
        Kind::Dir => std::fs::create_dir_all(&target).map_err(|e| e.to_string()),
        Kind::File => {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            // Only directories and plain files are ever created here, so no component is a link.
            let mut out = std::fs::File::create(&target).map_err(|e| e.to_string())?;
            std::io::copy(reader, &mut out).map_err(|e| e.to_string())?;
            Ok(())
        }
        Kind::Other => Ok(()),
    }
}

/// Reads what [`ChartFiles`] holds from a package without unpacking it.
pub fn inspect(
    package: &Path,
    label: &str,
    limits: ChartLimits,
) -> Result<ChartFiles, PackageError> {
    let mut files = ChartFiles::default();
    let max = limits.max_metadata_bytes;
    walk(
        package,
        label,
        limits,
        Layout::Chart,
        |relative, kind, reader| {
            if !matches!(kind, Kind::File) {
                return Ok(());
            }
            let parts: Vec<&std::ffi::OsStr> = relative.iter().collect();
            match parts.as_slice() {
                [name] if *name == "Chart.yaml" => files.chart_yaml = Some(read_text(reader, max)?),
                [name] if *name == "Chart.lock" => files.chart_lock = Some(read_text(reader, max)?),
                [charts, archive] if *charts == "charts" => {
                    let archive = archive.to_string_lossy();
                    if archive.ends_with(".tgz") {
                        files.vendored_archives.push(archive.into_owned());
                    }
                }
                [charts, _, name] if *charts == "charts" && *name == "Chart.yaml" => {
                    let text = read_text(reader, max)?;
                    if let Some(name) = chart_name(&text) {
                        files.vendored_dirs.push(name);
                    }
                }
                _ => {}
            }
            Ok(())
        },
    )?;
    Ok(files)
}

/// Reads what [`ChartFiles`] holds from a chart directory.
pub fn inspect_dir(
    dir: &Path,
    label: &str,
    limits: ChartLimits,
) -> Result<ChartFiles, PackageError> {
    let fail = |reason: String| PackageError {
        chart: label.to_owned(),
        reason,
    };
    let max = limits.max_metadata_bytes;
    let read = |path: &Path, name: &str| -> Result<Option<String>, PackageError> {
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.is_file() => {
                let file = std::fs::File::open(path).map_err(|e| fail(format!("{name}: {e}")))?;
                read_text(&mut std::io::BufReader::new(file), max)
                    .map(Some)
                    .map_err(|reason| fail(format!("{name}: {reason}")))
            }
            _ => Ok(None),
        }
    };
    let mut files = ChartFiles {
        chart_yaml: read(&dir.join("Chart.yaml"), "Chart.yaml")?,
        chart_lock: read(&dir.join("Chart.lock"), "Chart.lock")?,
        ..ChartFiles::default()
    };
    let Ok(entries) = std::fs::read_dir(dir.join("charts")) else {
        return Ok(files);
    };
    for (i, entry) in entries.enumerate() {
        if i >= limits.max_entries {
            return Err(fail(format!(
                "charts/ holds more than {} entries",
                limits.max_entries
            )));
        }
        let entry = entry.map_err(|e| fail(format!("charts/: {e}")))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            let yaml = format!("charts/{name}/Chart.yaml");
            if let Some(text) = read(&entry.path().join("Chart.yaml"), &yaml)?
                && let Some(chart) = chart_name(&text)
            {
                files.vendored_dirs.push(chart);
            }
        } else if kind.is_file() && name.ends_with(".tgz") {
            files.vendored_archives.push(name);
        }
    }
    Ok(files)
}

/// Copies the chart directory `from` to `to` (created): plain files and directories only, symbolic links
/// and anything else skipped, within the limits.
pub fn copy_dir(
    from: &Path,
    to: &Path,
    label: &str,
    limits: ChartLimits,
) -> Result<(), PackageError> {
    let mut budget = (limits.max_unpacked_bytes, limits.max_entries);
    copy_tree(from, to, Path::new(""), label, limits, &mut budget, 0)
}

fn copy_tree(
    from: &Path,
    to: &Path,
    relative: &Path,
    label: &str,
    limits: ChartLimits,
    budget: &mut (u64, usize),
    depth: usize,
) -> Result<(), PackageError> {
    let fail = |reason: String| PackageError {
        chart: label.to_owned(),
        reason,
    };
    let shown = |path: &Path| {
        if path.as_os_str().is_empty() {
            ".".to_owned()
        } else {
            path.display().to_string()
        }
    };
    if depth > 64 {
        return Err(fail(format!(
            "{}: nested more than 64 directories deep",
            shown(relative)
        )));
    }
    std::fs::create_dir_all(to).map_err(|e| fail(format!("copying {}: {e}", shown(relative))))?;
    let entries =
        std::fs::read_dir(from).map_err(|e| fail(format!("reading {}: {e}", shown(relative))))?;
    for entry in entries {
        let entry = entry.map_err(|e| fail(format!("reading {}: {e}", shown(relative))))?;
        budget.1 = budget.1.checked_sub(1).ok_or_else(|| {
            fail(format!(
                "more than {} files and directories",
                limits.max_entries
            ))
        })?;
        let name = entry.file_name();
        let inner = relative.join(&name);
        let meta = std::fs::symlink_metadata(entry.path())
            .map_err(|e| fail(format!("{}: {e}", shown(&inner))))?;
        if meta.is_dir() {
            copy_tree(
                &entry.path(),
                &to.join(&name),
                &inner,
                label,
                limits,
                budget,
                depth + 1,
            )?;
        } else if meta.is_file() {
            budget.0 = budget.0.checked_sub(meta.len()).ok_or_else(|| {
                fail(format!(
                    "holds more than {} bytes",
                    limits.max_unpacked_bytes
                ))
            })?;
            std::fs::copy(entry.path(), to.join(&name))
                .map_err(|e| fail(format!("copying {}: {e}", shown(&inner))))?;
        } else {
            tracing::debug!(chart = %label, file = %inner.display(), "Chart file skipped: not a plain file or directory.");
        }
    }
    Ok(())
}

/// `name:` of a `Chart.yaml` text, when it has one.
fn chart_name(text: &str) -> Option<String> {
    let budget = edgecd_render::yaml::Budget::new(text.len() as u64 * 4 + 4096);
    let doc = edgecd_render::yaml::load_one_within(text, &budget).ok()?;
    doc.get("name")?.as_str().map(str::to_owned)
}

/// At most `max` bytes of UTF-8.
fn read_text(reader: &mut dyn Read, max: usize) -> Result<String, String> {
    let mut bytes = Vec::new();
    reader
        .take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() > max {
        return Err(format!("larger than {max} bytes"));
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())
}

/// An entry name for messages: at most 100 characters, quoted.
fn shown_name(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    if text.chars().count() <= 100 {
        format!("{text:?}")
    } else {
        let head: String = text.chars().take(100).collect();
        format!("{head:?}…")
    }
}

/// A reader that fails once more than `left` bytes came through (and says so in `exceeded`).
struct Bounded<R> {
    inner: R,
    left: u64,
    exceeded: Rc<Cell<bool>>,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        match self.left.checked_sub(n as u64) {
            Some(left) => {
                self.left = left;
                Ok(n)
            }
            None => {
                self.exceeded.set(true);
                Err(std::io::Error::other("too large"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::io::Write as _;

    /// A gzipped tar of `(name, type, content)` entries, names written raw (so `..` and `/x` can be had).
    fn package(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, kind, content) in entries {
            let mut header = tar::Header::new_old();
            let bytes = name.as_bytes();
            header.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
            header.set_entry_type(*kind);
            header.set_mode(0o644);
            header.set_size(content.len() as u64);
            if *kind == tar::EntryType::Symlink {
                header.set_size(0);
                header.set_link_name("/etc/passwd").unwrap();
            }
            header.set_cksum();
            let data: &[u8] = if *kind == tar::EntryType::Symlink {
                &[]
            } else {
                content
            };
            builder.append(&header, data).unwrap();
        }
        let tar = builder.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        gz.finish().unwrap()
    }

    fn write(dir: &Path, bytes: &[u8]) -> PathBuf {
        let path = dir.join("p.tgz");
        std::fs::write(&path, bytes).unwrap();
        path
    }

    const FILE: tar::EntryType = tar::EntryType::Regular;

    #[test]
    fn packages_unpack_under_their_top_directory_and_are_inspected() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            &package(&[
                (
                    "web/Chart.yaml",
                    FILE,
                    b"apiVersion: v2\nname: web\nversion: 1.0.0\n",
                ),
                ("web/Chart.lock", FILE, b"dependencies: []\n"),
                ("web/values.yaml", FILE, b"a: 1\n"),
                ("web/charts/lib-1.0.0.tgz", FILE, b"not really"),
                (
                    "web/charts/extras/Chart.yaml",
                    FILE,
                    b"name: extras\nversion: 0.1.0\n",
                ),
                ("web/link", tar::EntryType::Symlink, b""),
                ("README", FILE, b"beside the chart"),
            ]),
        );
        let files = inspect(&path, "web 1.0.0", ChartLimits::default()).unwrap();
        assert!(files.chart_yaml.unwrap().contains("name: web"));
        assert_eq!(files.chart_lock.as_deref(), Some("dependencies: []\n"));
        assert_eq!(files.vendored_archives, ["lib-1.0.0.tgz"]);
        assert_eq!(files.vendored_dirs, ["extras"]);

        let out = tempfile::tempdir().unwrap();
        let chart = unpack(&path, out.path(), "web 1.0.0", ChartLimits::default()).unwrap();
        assert_eq!(
            std::fs::read_to_string(chart.join("values.yaml")).unwrap(),
            "a: 1\n"
        );
        assert!(chart.join("charts/extras/Chart.yaml").is_file());
        assert!(
            std::fs::symlink_metadata(chart.join("link")).is_err(),
            "links are never created"
        );
    }

    #[test]
    fn every_gzip_member_is_read_and_one_top_directory_is_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let limits = ChartLimits::default();
        // Two gzip members, as helm reads them: the second's template is part of the chart.
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        let chart_yaml = b"apiVersion: v2\nname: web\nversion: 1.0.0\n";
        header.set_size(chart_yaml.len() as u64);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, "web/Chart.yaml", &chart_yaml[..])
            .unwrap();
        // No end-of-archive blocks in the first member: the tar stream goes on in the second.
        let first_tar = builder.get_ref().clone();
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(5);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, "web/templates/evil.yaml", &b"a: 1\n"[..])
            .unwrap();
        let second_tar = builder.into_inner().unwrap();
        let gz = |bytes: &[u8]| {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(bytes).unwrap();
            gz.finish().unwrap()
        };
        let mut bytes = gz(&first_tar);
        bytes.extend(gz(&second_tar));
        let path = write(dir.path(), &bytes);
        let out = tempfile::tempdir().unwrap();
        let chart = unpack(&path, out.path(), "web 1.0.0", limits).unwrap();
        assert!(chart.join("Chart.yaml").is_file());
        assert!(
            chart.join("templates/evil.yaml").is_file(),
            "the second gzip member is read"
        );
        // The byte bound holds over every member.
        let small = ChartLimits {
            max_unpacked_bytes: first_tar.len() as u64 + 100,
            ..limits
        };
        let err = inspect(&path, "web", small).unwrap_err();
        assert!(err.to_string().contains("unpacks to more than"), "{err}");

        // Two top directories: refused.
        let path = write(
            dir.path(),
            &package(&[
                ("web/Chart.yaml", FILE, b"name: web\nversion: 1.0.0\n"),
                ("other/templates/x.yaml", FILE, b"a: 1\n"),
            ]),
        );
        let err = inspect(&path, "web 1.0.0", limits).unwrap_err();
        assert_eq!(
            err.to_string(),
            "chart web 1.0.0: more than one top-level directory (web, other)"
        );
        // A file beside the chart directory is not a second one.
        let path = write(
            dir.path(),
            &package(&[
                ("README", FILE, b"beside"),
                ("web/Chart.yaml", FILE, b"name: web\nversion: 1.0.0\n"),
            ]),
        );
        assert!(inspect(&path, "web 1.0.0", limits).is_ok());
    }

    #[test]
    fn hostile_packages_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let limits = ChartLimits::default();
        for name in ["web/../../evil", "/etc/evil", "../evil"] {
            let path = write(dir.path(), &package(&[(name, FILE, b"x")]));
            let out = tempfile::tempdir().unwrap();
            let err = unpack(&path, out.path(), "web 1.0.0", limits).unwrap_err();
            assert!(
                err.to_string().contains("absolute or leaves the chart"),
                "{err}"
            );
            assert!(
                err.to_string().starts_with("chart web 1.0.0: entry "),
                "{err}"
            );
        }
        // Bytes and entries are bounded, whatever the compression ratio.
        let zeros = vec![0u8; 256 * 1024];
        let path = write(dir.path(), &package(&[("web/big", FILE, &zeros)]));
        let small = ChartLimits {
            max_unpacked_bytes: 64 * 1024,
            ..limits
        };
        let err = inspect(&path, "web", small).unwrap_err();
        assert_eq!(
            err.to_string(),
            "chart web: unpacks to more than 65536 bytes"
        );
        let many: Vec<(String, tar::EntryType, &[u8])> = (0..20)
            .map(|i| (format!("web/f{i}"), FILE, &b""[..]))
            .collect();
        let many: Vec<(&str, tar::EntryType, &[u8])> =
            many.iter().map(|(n, k, c)| (n.as_str(), *k, *c)).collect();
        let path = write(dir.path(), &package(&many));
        let few = ChartLimits {
            max_entries: 10,
            ..limits
        };
        let err = inspect(&path, "web", few).unwrap_err();
        assert_eq!(err.to_string(), "chart web: more than 10 entries");
        let path = write(dir.path(), b"\x1f\x8bnot gzip at all");
        assert!(inspect(&path, "web", limits).is_err());
    }

    #[test]
    fn chart_directories_copy_without_links_within_limits() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("web");
        std::fs::create_dir_all(from.join("templates")).unwrap();
        std::fs::write(from.join("Chart.yaml"), "name: web\n").unwrap();
        std::fs::write(from.join("templates/a.yaml"), "a: 1\n").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("/etc", from.join("etc")).unwrap();
        let to = dir.path().join("copy");
        copy_dir(&from, &to, "web", ChartLimits::default()).unwrap();
        assert!(to.join("templates/a.yaml").is_file());
        assert!(std::fs::symlink_metadata(to.join("etc")).is_err());
        let tiny = ChartLimits {
            max_unpacked_bytes: 4,
            ..ChartLimits::default()
        };
        let err = copy_dir(&from, &dir.path().join("c2"), "web", tiny).unwrap_err();
        assert_eq!(err.to_string(), "chart web: holds more than 4 bytes");
        let files = inspect_dir(&from, "web", ChartLimits::default()).unwrap();
        assert_eq!(files.chart_yaml.as_deref(), Some("name: web\n"));
    }
}
