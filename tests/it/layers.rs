//! The layer rule of ARCHITECTURE.md, checked on the source: every `crate::` and `super::`
//! path in the library's files names a module of the same layer or a lower one, `api` and
//! `proxy` never name each other, and no two files of the library name each other through a
//! chain (no import circle). Read as text, like a newcomer reads the `use` lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first; one folder (or file) of `src/` each.
const LAYERS: &[(&str, u8)] = &[
    ("base", 0),
    ("store", 1),
    ("run", 2),
    ("engine", 3),
    ("api", 4),
    ("proxy", 4),
    ("host", 5),
];

/// Files of `src/` that belong to the `hangar` binary, not to the library.
fn is_binary(rel: &Path) -> bool {
    rel == Path::new("main.rs") || rel.starts_with("cli")
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("read an entry of src/").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file: `src/run/logs.rs` → `["run", "logs"]`, `src/engine/mod.rs` →
/// `["engine"]`, `src/lib.rs` → `[]`.
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The file a module path names: the longest prefix of `segments` that is a module file.
fn file_of(modules: &BTreeMap<Vec<String>, PathBuf>, segments: &[String]) -> Option<PathBuf> {
    (1..=segments.len())
        .rev()
        .find_map(|n| modules.get(&segments[..n]).cloned())
}

fn layer_of(module: &[String]) -> Option<(&'static str, u8)> {
    let top = module.first()?;
    LAYERS.iter().find(|(name, _)| name == top).copied()
}

/// Every module path a file names: `crate::a::b` as written, `super::x` resolved against the
/// file's own module. A braced `crate::{…}` group is refused so that no path hides in it.
fn named_paths(text: &str, own: &[String]) -> Result<Vec<Vec<String>>, String> {
    let mut out = Vec::new();
    let ident = |s: &str| -> Vec<String> {
        let mut segs = Vec::new();
        for seg in s.split("::") {
            let name: String = seg
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name.is_empty() || name.len() != seg.len() {
                if !name.is_empty() {
                    segs.push(name);
                }
                break;
            }
            segs.push(name);
        }
        segs
    };
    for (i, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for (at, _) in code.match_indices("crate::") {
            if at > 0 && code.as_bytes()[at - 1].is_ascii_alphanumeric() {
                continue;
            }
            let rest = &code[at + "crate::".len()..];
            if rest.starts_with('{') {
                return Err(format!(
                    "line {}: `crate::{{…}}` groups hide which modules are named; write one path per `use`",
                    i + 1
                ));
            }
            let segs = ident(
                rest.split(|c: char| {
                    c.is_whitespace()
                        || c == ';'
                        || c == ','
                        || c == ')'
                        || c == '('
                        || c == '<'
                        || c == '>'
                        || c == '&'
                })
                .next()
                .unwrap_or(""),
            );
            if !segs.is_empty() {
                out.push(segs);
            }
        }
        for (at, _) in code.match_indices("super::") {
            if at > 0 && code.as_bytes()[at - 1].is_ascii_alphanumeric()
                || at >= 2 && &code[at - 2..at] == "::"
            {
                continue;
            }
            // `super` of a mod.rs is its parent folder's module; of a leaf file, its folder's:
            // either way one step up from the file's own module path (`own` of a mod.rs is
            // already its folder's).
            let mut base: Vec<String> = own.to_vec();
            base.pop();
            let rest = &code[at + "super::".len()..];
            if rest.starts_with('*') || rest.starts_with('{') {
                // `use super::*` in a test module names its own file; a brace group names
                // siblings of the parent: counted through their own paths below.
                if rest.starts_with('{') {
                    let group = &rest[1..rest.find('}').unwrap_or(rest.len())];
                    for item in group.split(',') {
                        let segs = ident(item.trim());
                        if let Some(first) = segs.first() {
                            if first != "self"
                                && first.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                            {
                                let mut p = base.clone();
                                p.push(first.clone());
                                out.push(p);
                            } else {
                                out.push(base.clone());
                            }
                        }
                    }
                }
                continue;
            }
            let segs = ident(
                rest.split(|c: char| c.is_whitespace() || c == ';' || c == ',')
                    .next()
                    .unwrap_or(""),
            );
            let mut p = base;
            p.extend(segs);
            out.push(p);
        }
    }
    Ok(out)
}

struct Graph {
    /// file → files it names (other than itself)
    edges: BTreeMap<PathBuf, BTreeSet<PathBuf>>,
    module: BTreeMap<PathBuf, Vec<String>>,
}

fn read_graph() -> Graph {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut modules = BTreeMap::new();
    let mut module = BTreeMap::new();
    for f in &files {
        let rel = f
            .strip_prefix(&root)
            .expect("a file under src/")
            .to_path_buf();
        if is_binary(&rel) {
            continue;
        }
        let m = module_of(&rel);
        modules.insert(m.clone(), rel.clone());
        module.insert(rel, m);
    }
    let mut edges = BTreeMap::new();
    let mut refused = Vec::new();
    for (rel, m) in &module {
        let text = std::fs::read_to_string(root.join(rel)).expect("read a source file");
        let named = match named_paths(&text, m) {
            Ok(n) => n,
            Err(e) => {
                refused.push(format!("src/{}: {e}", rel.display()));
                continue;
            }
        };
        let mut to = BTreeSet::new();
        for path in named {
            if let Some(f) = file_of(&modules, &path) {
                if &f != rel && !f.ends_with("lib.rs") {
                    to.insert(f);
                }
            }
        }
        edges.insert(rel.clone(), to);
    }
    assert!(refused.is_empty(), "{}", refused.join("\n"));
    Graph { edges, module }
}

#[test]
fn every_library_file_is_in_a_layer() {
    let g = read_graph();
    let loose: Vec<String> = g
        .module
        .iter()
        .filter(|(rel, m)| !m.is_empty() && layer_of(m).is_none() && !rel.ends_with("lib.rs"))
        .map(|(rel, _)| format!("src/{}", rel.display()))
        .collect();
    assert!(
        loose.is_empty(),
        "files outside every layer (put each in one of {:?}): {loose:?}",
        LAYERS.iter().map(|l| l.0).collect::<Vec<_>>()
    );
}

#[test]
fn no_arrow_runs_up_a_layer() {
    let g = read_graph();
    let mut wrong = Vec::new();
    let mut counted = 0;
    for (from, tos) in &g.edges {
        let Some((fl, fr)) = layer_of(&g.module[from]) else {
            continue;
        };
        for to in tos {
            let Some((tl, tr)) = layer_of(&g.module[to]) else {
                continue;
            };
            counted += 1;
            let siblings = fl != tl && fr == tr;
            if tr > fr || siblings {
                wrong.push(format!(
                    "src/{} ({fl}) names src/{} ({tl})",
                    from.display(),
                    to.display()
                ));
            }
        }
    }
    assert!(
        counted > 50,
        "the test read only {counted} arrows: is it reading the source?"
    );
    assert!(
        wrong.is_empty(),
        "arrows that run up or across a layer:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_import_circle() {
    let g = read_graph();
    // Tarjan's strongly connected components; any with two or more files is a circle.
    struct S<'a> {
        g: &'a Graph,
        index: BTreeMap<&'a PathBuf, usize>,
        low: BTreeMap<&'a PathBuf, usize>,
        stack: Vec<&'a PathBuf>,
        on: BTreeSet<&'a PathBuf>,
        next: usize,
        circles: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut S<'a>, v: &'a PathBuf) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on.insert(v);
        for w in &s.g.edges[v] {
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on.remove(w);
                comp.push(format!("src/{}", w.display()));
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.circles.push(comp);
            }
        }
    }
    let mut s = S {
        g: &g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        circles: Vec::new(),
    };
    for v in g.edges.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    assert!(s.circles.is_empty(), "import circles: {:?}", s.circles);
}

#[test]
fn the_reader_sees_paths_and_circles() {
    // The reader itself: a path, a `super::` group, a refused brace group.
    let own = vec!["proxy".to_string(), "fast".to_string()];
    let named = named_paths(
        "use crate::run::supervisor::Event;\nuse super::{pages, Proxy};\nlet x = crate::base::web::escape(s);",
        &own,
    )
    .expect("readable");
    assert!(named.contains(&vec!["run".into(), "supervisor".into(), "Event".into()]));
    assert!(named.contains(&vec!["proxy".into(), "pages".into()]));
    assert!(named.contains(&vec!["proxy".into()]));
    assert!(named.contains(&vec!["base".into(), "web".into(), "escape".into()]));
    assert!(named_paths("use crate::{a, b};", &own).is_err());
}

/// Source paths a doc names in backquotes (`src/run/logs.rs`, `ui/src/lib/api.ts`): each must
/// exist, read from the repository's root, from `src/` (ARCHITECTURE.md's code map), from
/// `src-tauri/src/` (the shell's rows) or from the doc's own folder (`ui/README.md`). A doc that
/// names a file that moved sends a newcomer nowhere.
fn named_source_paths(text: &str) -> Vec<String> {
    const EXT: &[&str] = &[
        "rs", "ts", "svelte", "sh", "mjs", "js", "py", "toml", "json", "sql",
    ];
    let mut out = Vec::new();
    for quoted in text.split('`').skip(1).step_by(2) {
        let ok_chars = quoted
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c));
        let ext = quoted.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
        let file = quoted.rsplit('/').next().unwrap_or("");
        if ok_chars
            && quoted.contains('/')
            && !quoted.starts_with('/')
            && !quoted.contains("..")
            && file.contains('.')
            && EXT.contains(&ext)
        {
            out.push(quoted.to_string());
        }
    }
    out
}

#[test]
fn every_source_path_a_doc_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut docs: Vec<PathBuf> = [
        "README.md",
        "ARCHITECTURE.md",
        "SECURITY.md",
        "BENCHMARKS.md",
    ]
    .iter()
    .map(|d| root.join(d))
    .collect();
    for dir in ["docs", "ui", "bench"] {
        if let Ok(entries) = std::fs::read_dir(root.join(dir)) {
            for e in entries.flatten() {
                if e.path().extension().is_some_and(|x| x == "md") {
                    docs.push(e.path());
                }
            }
        }
    }
    let mut missing = Vec::new();
    for doc in &docs {
        let Ok(text) = std::fs::read_to_string(doc) else {
            continue;
        };
        let own = doc.parent().unwrap_or(root);
        for p in named_source_paths(&text) {
            let bases = [root, &root.join("src"), &root.join("src-tauri/src"), own];
            if !bases.iter().any(|b| b.join(&p).exists()) {
                missing.push(format!(
                    "{}: `{p}`",
                    doc.strip_prefix(root).unwrap_or(doc).display()
                ));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs name source files that do not exist (moved or renamed?):\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_doc_reader_finds_source_paths_only() {
    let found = named_source_paths(
        "see `src/run/logs.rs` and `logs/<name>.log`, `hangar.toml`, `/etc/x.conf`, `ui/src/lib/api.ts`",
    );
    assert_eq!(
        found,
        vec![
            "src/run/logs.rs".to_string(),
            "ui/src/lib/api.ts".to_string()
        ]
    );
}
