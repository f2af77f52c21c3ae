//! Generator and freshness check for `src/schema/generated.rs`, built from the k8s-openapi crate's source.
//!
//! Regenerate with `EDGECD_REGEN_SCHEMA=1 cargo test -p edgecd-render --test schema_table`.
//! Without that variable the test only checks that the committed table matches what the generator produces,
//! and skips (with a message) when the k8s-openapi 0.29.0 source is not in the local cargo registry.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a broken generator input should fail loudly"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use regex::Regex;

const K8S_OPENAPI_DIR: &str = "k8s-openapi-0.29.0";
const API_VERSION_DIR: &str = "v1_33";

#[test]
fn committed_schema_table_matches_generator() {
    let Some(source) = find_source() else {
        eprintln!("skipping: {K8S_OPENAPI_DIR} source not found in the cargo registry");
        return;
    };
    let generated = generate(&source);
    let committed_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/schema/generated.rs");
    if std::env::var_os("EDGECD_REGEN_SCHEMA").is_some() {
        std::fs::write(&committed_path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&committed_path).unwrap();
    assert!(
        committed == generated,
        "src/schema/generated.rs is stale; run EDGECD_REGEN_SCHEMA=1 cargo test -p edgecd-render --test schema_table"
    );
}

fn find_source() -> Option<PathBuf> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))?;
    let registry = cargo_home.join("registry/src");
    for index in std::fs::read_dir(registry).ok()?.flatten() {
        let candidate = index
            .path()
            .join(K8S_OPENAPI_DIR)
            .join("src")
            .join(API_VERSION_DIR);
        if candidate.is_dir() {
            return Some(candidate);
        }
    }
    None
}

/// One field of a generated struct, as read from the source.
#[derive(Debug, Clone)]
struct RawField {
    json_name: String,
    child: Option<String>,
    container: Container,
    list: Option<String>,
    map_atomic: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Container {
    Plain,
    List,
    Map,
}

#[derive(Debug, Default)]
struct RawType {
    fields: Vec<RawField>,
    json_names: BTreeMap<String, String>,
}

#[derive(Debug)]
struct RawKind {
    group: String,
    version: String,
    kind: String,
    type_id: String,
    namespaced: bool,
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn generate(source: &Path) -> String {
    let struct_re = Regex::new(r"(?m)^pub struct (\w+) \{").unwrap();
    let field_re = Regex::new(r"(?m)^    pub (\w+): (.+),$").unwrap();
    let key_re = Regex::new(r#""([^"]+)" => Field::Key_(\w+),"#).unwrap();
    let strategy_re = Regex::new(
        r"crate::merge_strategies::(list|map)::(atomic|map|set|granular)\(\s*&mut self\.(\w+),",
    )
    .unwrap();
    let map_keys_re =
        Regex::new(r"list::map\(\s*&mut self\.(\w+),\s*other\.\w+,\s*&\[([^\]]*)\]").unwrap();
    let key_cmp_re = Regex::new(r"lhs\.([\w.]+) == rhs").unwrap();
    let resource_re = Regex::new(
        r#"impl crate::Resource for (\w+) \{\s*const API_VERSION: &'static str = "[^"]*";\s*const GROUP: &'static str = "([^"]*)";\s*const KIND: &'static str = "([^"]*)";\s*const VERSION: &'static str = "([^"]*)";\s*const URL_PATH_SEGMENT: &'static str = "[^"]*";\s*type Scope = crate::(\w+);"#,
    )
    .unwrap();

    let mut files = Vec::new();
    collect_files(source, &mut files);
    let mut types: BTreeMap<String, RawType> = BTreeMap::new();
    let mut kinds: Vec<RawKind> = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let module = file
            .parent()
            .unwrap()
            .strip_prefix(source)
            .unwrap()
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(".");
        let Some(name) = struct_re.captures(&text).map(|c| c[1].to_string()) else {
            continue;
        };
        let type_id = format!("{module}.{name}");
        let json_names: BTreeMap<String, String> = key_re
            .captures_iter(&text)
            .map(|c| (c[2].to_string(), c[1].to_string()))
            .collect();
        let body_start = text.find(&format!("pub struct {name} {{")).unwrap();
        let body_end = body_start + text[body_start..].find("\n}\n").unwrap();
        let mut raw = RawType {
            json_names: json_names.clone(),
            ..RawType::default()
        };
        for cap in field_re.captures_iter(&text[body_start..body_end]) {
            let rust_name = cap[1].to_string();
            let Some(json_name) = json_names.get(&rust_name) else {
                continue;
            };
            let (container, child) = parse_type(&cap[2]);
            raw.fields.push(RawField {
                json_name: json_name.clone(),
                child,
                container,
                list: None,
                map_atomic: false,
            });
        }
        let rust_to_index: BTreeMap<String, usize> = field_re
            .captures_iter(&text[body_start..body_end])
            .filter(|c| json_names.contains_key(&c[1]))
            .enumerate()
            .map(|(i, c)| (c[1].to_string(), i))
            .collect();
        for cap in strategy_re.captures_iter(&text) {
            let Some(&index) = rust_to_index.get(&cap[3]) else {
                continue;
            };
            let field = &mut raw.fields[index];
            match (&cap[1], &cap[2]) {
                ("list", "atomic") => field.list = Some("Atomic".into()),
                ("list", "set") => field.list = Some("Set".into()),
                ("list", "map") => {
                    let keys: Vec<String> = map_keys_re
                        .captures_iter(&text)
                        .find(|m| m[1] == cap[3])
                        .map(|m| {
                            key_cmp_re
                                .captures_iter(&m[2])
                                .map(|k| k[1].to_string())
                                .collect()
                        })
                        .unwrap_or_default();
                    field.list = Some(format!("Map {{ keys: &[{}] }}", keys.join(", ")));
                }
                ("map", "atomic") => field.map_atomic = true,
                _ => {}
            }
        }
        for cap in resource_re.captures_iter(&text) {
            if cap[1] == *name && cap[5] != *"SubResourceScope" {
                kinds.push(RawKind {
                    group: cap[2].to_string(),
                    version: cap[4].to_string(),
                    kind: cap[3].to_string(),
                    type_id: type_id.clone(),
                    namespaced: &cap[5] == "NamespaceResourceScope",
                });
            }
        }
        types.insert(type_id, raw);
    }

    // Map list-map keys (collected as Rust field names of the item type) to JSON names.
    let item_names: BTreeMap<String, BTreeMap<String, String>> = types
        .iter()
        .map(|(id, raw)| (id.clone(), raw.json_names.clone()))
        .collect();
    for raw in types.values_mut() {
        for field in &mut raw.fields {
            let (Some(list), Some(child)) = (&field.list, &field.child) else {
                continue;
            };
            let Some(names) = item_names.get(child) else {
                continue;
            };
            if let Some(inner) = list
                .strip_prefix("Map { keys: &[")
                .and_then(|l| l.strip_suffix("] }"))
            {
                let keys: Vec<String> = inner
                    .split(", ")
                    .filter(|k| !k.is_empty())
                    .map(|k| {
                        let (first, rest) =
                            k.split_once('.').map_or((k, None), |(f, r)| (f, Some(r)));
                        let first = names.get(first).map_or(first, |n| n.as_str());
                        // Nested keys (e.g. `metadata.name`) keep their remaining segments, which are single words.
                        format!(
                            "{:?}",
                            rest.map_or(first.to_string(), |r| format!("{first}.{r}"))
                        )
                    })
                    .collect();
                field.list = Some(format!("Map {{ keys: &[{}] }}", keys.join(", ")));
            }
        }
    }

    // Keep only fields that carry a strategy or lead (transitively) to one.
    let mut interesting: BTreeSet<String> = BTreeSet::new();
    loop {
        let before = interesting.len();
        for (id, raw) in &types {
            let has = raw.fields.iter().any(|f| {
                f.list.is_some()
                    || f.map_atomic
                    || f.child.as_ref().is_some_and(|c| interesting.contains(c))
            });
            if has {
                interesting.insert(id.clone());
            }
        }
        if interesting.len() == before {
            break;
        }
    }
    // Keep only types reachable from a kind.
    let mut reachable: BTreeSet<String> = BTreeSet::new();
    let mut stack: Vec<String> = kinds.iter().map(|k| k.type_id.clone()).collect();
    while let Some(id) = stack.pop() {
        if !interesting.contains(&id) || !reachable.insert(id.clone()) {
            continue;
        }
        for field in &types[&id].fields {
            if let Some(child) = &field.child {
                stack.push(child.clone());
            }
        }
    }
    let index: BTreeMap<&String, usize> = reachable
        .iter()
        .enumerate()
        .map(|(i, id)| (id, i))
        .collect();

    let mut out = String::new();
    out.push_str("//! Generated list/map merge strategies of built-in Kubernetes types (from k8s-openapi 0.29.0, v1_33); do not edit.\n");
    out.push_str("//!\n");
    out.push_str("//! Regenerate with `EDGECD_REGEN_SCHEMA=1 cargo test -p edgecd-render --test schema_table`.\n\n");
    out.push_str("use super::{FieldDef, KindDef, ListStrategy::*, NONE, TypeDef};\n\n");
    out.push_str(
        "/// Object types reachable from a kind that have a strategy somewhere below them.\n",
    );
    out.push_str("pub(super) static TYPES: &[TypeDef] = &[\n");
    for id in &reachable {
        writeln!(out, "    TypeDef {{").unwrap();
        writeln!(out, "        name: {id:?},").unwrap();
        writeln!(out, "        fields: &[").unwrap();
        let mut fields: Vec<&RawField> = types[id]
            .fields
            .iter()
            .filter(|f| {
                f.list.is_some()
                    || f.map_atomic
                    || f.child.as_ref().is_some_and(|c| reachable.contains(c))
            })
            .collect();
        fields.sort_by(|a, b| a.json_name.cmp(&b.json_name));
        for f in fields {
            let child = f
                .child
                .as_ref()
                .and_then(|c| index.get(c))
                .map_or("NONE".to_string(), |i| i.to_string());
            let list = f
                .list
                .as_ref()
                .map_or("None".to_string(), |l| format!("Some({l})"));
            writeln!(
                out,
                "            FieldDef {{ name: {:?}, child: {child}, keyed: {}, list: {list}, map_atomic: {} }},",
                f.json_name,
                f.container == Container::Map,
                f.map_atomic
            )
            .unwrap();
        }
        writeln!(out, "        ],").unwrap();
        writeln!(out, "    }},").unwrap();
    }
    out.push_str("];\n\n");
    kinds.sort_by(|a, b| (&a.group, &a.version, &a.kind).cmp(&(&b.group, &b.version, &b.kind)));
    out.push_str("/// Every built-in kind: group, version, kind, namespaced, root type (`NONE` when it has no strategies).\n");
    out.push_str("pub(super) static KINDS: &[KindDef] = &[\n");
    for k in &kinds {
        let root = index
            .get(&k.type_id)
            .map_or("NONE".to_string(), |i| i.to_string());
        writeln!(
            out,
            "    KindDef {{ group: {:?}, version: {:?}, kind: {:?}, namespaced: {}, root: {root} }},",
            k.group, k.version, k.kind, k.namespaced
        )
        .unwrap();
    }
    out.push_str("];\n");
    out
}

/// Splits a field type into its container shape and the id of the struct inside (if any).
fn parse_type(ty: &str) -> (Container, Option<String>) {
    let mut ty = ty.trim();
    if let Some(inner) = ty.strip_prefix("Option<").and_then(|t| t.strip_suffix('>')) {
        ty = inner;
    }
    let mut container = Container::Plain;
    if let Some(inner) = ty
        .strip_prefix("std::vec::Vec<")
        .and_then(|t| t.strip_suffix('>'))
    {
        container = Container::List;
        ty = inner;
    } else if let Some(inner) = ty
        .strip_prefix("std::collections::BTreeMap<std::string::String, ")
        .and_then(|t| t.strip_suffix('>'))
    {
        container = Container::Map;
        ty = inner;
    }
    let child = ty
        .strip_prefix("crate::")
        .map(|path| path.replace("::", "."));
    (container, child)
}
