//! The import order of the library, as `src/lib.rs` and `src/topology/mod.rs` document it:
//! each module, and each stage of the topology, imports only those before it, so no two
//! modules or files import each other (issue 15, point 4). Read from the sources; code under
//! `#[cfg(test)]` and comments are not imports.

use std::path::{Path, PathBuf};

/// The top-level modules, in order. `topology` stands where its later stages do; its stages
/// up to [`STAGES_BEFORE_NODES`] come before `nodes`.
const MODULES: &[&str] =
    &["exit_codes", "limits", "record", "wire", "http", "runtime", "nodes", "topology", "export", "launch", "plot"];

/// The stages of `topology`, in order.
const STAGES: &[&str] = &[
    "lines",
    "suggest",
    "diagnostic",
    "syntax",
    "names",
    "raw",
    "port",
    "model",
    "draft",
    "ports",
    "process",
    "checks",
    "hosts",
    "ipc",
    "expand",
    "overrides",
    "compile",
    "load",
    "summary",
    "schema",
];

/// How many of [`STAGES`] come before `nodes`, which may import them.
const STAGES_BEFORE_NODES: usize = 7;

/// What `topology` re-exports from the stages before `nodes`.
const EARLY_ITEMS: &[&str] = &["Pattern", "Port", "TopicRule"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a readable source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A file's code, without its tests and comments.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("a readable source file");
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines().map(|l| l.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

/// The paths that follow `prefix` in `code`, a group such as `a::{b, c::d}` giving one per
/// name: `["a::b", "a::c::d"]`.
fn paths_after(code: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (at, _) in code.match_indices(prefix) {
        if code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &code[at + prefix.len()..];
        expand(&rest[..path_len(rest)], &mut out);
    }
    out
}

/// The length of the path `text` starts with: names and `::`, and groups in braces after `::`.
fn path_len(text: &str) -> usize {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '{' if text[..i].ends_with("::") => depth += 1,
            '}' if depth > 0 => depth -= 1,
            ',' | ' ' | '\n' if depth > 0 => {}
            c if c.is_alphanumeric() || c == '_' || c == ':' => {}
            _ => return i,
        }
        if depth == 0 && c == '}' {
            return i + 1;
        }
    }
    text.len()
}

fn expand(tree: &str, out: &mut Vec<String>) {
    let Some(open) = tree.find('{') else {
        out.push(tree.to_string());
        return;
    };
    let base = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices().chain([(inner.len(), ',')]) {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                let item = inner[start..i].trim();
                if !item.is_empty() {
                    expand(&format!("{base}{item}"), out);
                }
                start = i + 1;
            }
            _ => {}
        }
    }
}

fn first(path: &str) -> &str {
    path.split("::").next().unwrap_or_default()
}

fn position(list: &[&str], name: &str) -> Option<usize> {
    list.iter().position(|m| *m == name)
}

// A module importing a later one closes a circle through it (runtime and nodes had one).
#[test]
fn each_module_imports_only_modules_before_it() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(src()).expect("under src");
        let module = rel.iter().next().and_then(|m| m.to_str()).expect("a file name").trim_end_matches(".rs");
        if module == "lib" {
            continue;
        }
        let me = position(MODULES, module).unwrap_or_else(|| panic!("add module `{module}` to MODULES"));
        for path in paths_after(&code(file), "crate::") {
            let target = first(&path);
            let them = position(MODULES, target).unwrap_or_else(|| panic!("add module `{target}` to MODULES"));
            let early_topology = module == "nodes" && target == "topology" && {
                let item = first(path.trim_start_matches("topology::"));
                EARLY_ITEMS.contains(&item) || position(&STAGES[..STAGES_BEFORE_NODES], item).is_some()
            };
            if them > me && !early_topology {
                wrong.push(format!("{} imports crate::{path}", rel.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "imports of later modules (see src/lib.rs):\n{}", wrong.join("\n"));
}

// A stage importing a later one closes a circle through it (compile, checks and hosts had one).
#[test]
fn each_topology_stage_imports_only_stages_before_it() {
    let dir = src().join("topology");
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let stage = file.file_stem().and_then(|s| s.to_str()).expect("a file name");
        if stage == "mod" {
            continue;
        }
        let me = position(STAGES, stage).unwrap_or_else(|| panic!("add stage `{stage}` to STAGES"));
        for path in paths_after(&code(file), "super::") {
            let target = first(&path);
            if position(STAGES, target).is_some_and(|them| them >= me) {
                wrong.push(format!("topology/{stage}.rs imports super::{path}"));
            }
        }
    }
    assert!(wrong.is_empty(), "imports of later stages (see src/topology/mod.rs):\n{}", wrong.join("\n"));
}
