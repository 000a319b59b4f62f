//! The layering written in `src/lib.rs`'s doc comment, checked: every `crate::` path in `src/`
//! names a module of a layer below its own (or its own module). A module missing from the list,
//! or a list that names a module that does not exist, fails too, so the list cannot drift from
//! the code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Layers from the top (0) down, read from the ```text block under "## Layers" in lib.rs.
fn layers(lib: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    let mut lines = lib
        .lines()
        .map_while(|l| l.strip_prefix("//!"))
        .skip_while(|l| l.trim() != "## Layers")
        .skip_while(|l| l.trim() != "```text")
        .skip(1);
    for (depth, line) in lines.by_ref().enumerate() {
        if line.trim() == "```" {
            return out;
        }
        // "metrics | journal      what they are": names joined by `|`, then the description.
        let mut want_name = true;
        for token in line.split_whitespace() {
            match (want_name, token) {
                (false, "|") => want_name = true,
                (true, name) if name.chars().all(|c| c.is_ascii_lowercase() || c == '_') => {
                    assert!(
                        out.insert(name.to_string(), depth).is_none(),
                        "`{name}` is listed twice in the layers"
                    );
                    want_name = false;
                }
                _ => break,
            }
        }
    }
    panic!("src/lib.rs has no ```text block of layers under \"## Layers\"");
}

/// The top-level module a file under `src/` belongs to (`None` for lib.rs and main.rs).
fn module_of(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib" && name != "main").then(|| name.to_string())
}

/// Every `crate::NAME` in the code of `text` (comments left out; macros such as `crate::say!`
/// are not modules and are skipped), with its line number.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = line.find("//").map_or(line, |c| &line[..c]);
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &after[name.len()..];
            if !name.is_empty() && !rest.starts_with('!') {
                found.push((i + 1, name));
            }
        }
    }
    found
}

/// The imports that break the layering, as `FILE:LINE: a -> b (why)`.
fn violations(layers: &BTreeMap<String, usize>, files: &[(PathBuf, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (path, text) in files {
        let Some(from) = module_of(path) else { continue };
        let Some(&own) = layers.get(&from) else {
            out.push(format!(
                "{}: module `{from}` has no layer in src/lib.rs",
                path.display()
            ));
            continue;
        };
        for (line, to) in crate_paths(text) {
            let Some(&theirs) = layers.get(&to) else { continue };
            if to == from {
                continue;
            }
            if theirs < own {
                out.push(format!(
                    "{}:{line}: {from} -> {to} (a layer above)",
                    path.display()
                ));
            } else if theirs == own {
                out.push(format!(
                    "{}:{line}: {from} -> {to} (the same layer)",
                    path.display()
                ));
            }
        }
    }
    out
}

fn rust_files(dir: &Path, root: &Path, out: &mut Vec<(PathBuf, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((path.strip_prefix(root).unwrap().to_path_buf(), text));
        }
    }
}

#[test]
fn no_module_imports_a_module_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let layers = layers(&lib);
    let mut files = Vec::new();
    rust_files(&src, &src, &mut files);

    // The list names exactly the crate's modules.
    let declared: Vec<String> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';').to_string())
        .collect();
    for m in &declared {
        assert!(
            layers.contains_key(m),
            "module `{m}` is missing from the layers in src/lib.rs"
        );
    }
    for m in layers.keys() {
        assert!(
            declared.contains(m),
            "the layers in src/lib.rs name `{m}`, which is no module"
        );
    }

    let bad = violations(&layers, &files);
    assert!(
        bad.is_empty(),
        "imports against the layering:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_check_catches_an_upward_or_sideways_import() {
    let lib = "//! ## Layers\n//!\n//! ```text\n//! cli      top\n//! tui | headless   front ends\n\
               //! journal\n//! text | identity   bottom\n//! ```\n";
    let layers = layers(lib);
    assert_eq!(layers["cli"], 0);
    assert_eq!(layers["headless"], 1);
    assert_eq!(layers["identity"], 3);
    let files = vec![
        (
            PathBuf::from("journal/writer.rs"),
            "use crate::tui::operator;\n".to_string(),
        ),
        (
            PathBuf::from("tui/state.rs"),
            "let t = crate::headless::clock(now);\n".to_string(),
        ),
        (
            PathBuf::from("tui/ui/mod.rs"),
            "use crate::text::fit; // crate::cli\n".to_string(),
        ),
        (
            PathBuf::from("text.rs"),
            "crate::say!(\"x\");\nuse crate::identity::host;\n".to_string(),
        ),
        (PathBuf::from("report.rs"), "use crate::text::fit;\n".to_string()),
    ];
    let bad = violations(&layers, &files);
    assert_eq!(
        bad,
        [
            "journal/writer.rs:1: journal -> tui (a layer above)",
            "tui/state.rs:1: tui -> headless (the same layer)",
            "text.rs:2: text -> identity (the same layer)",
            "report.rs: module `report` has no layer in src/lib.rs",
        ]
    );
}
