//! CONTRIBUTING.md's walk-through is true: every rule of the registry has the five touches it
//! describes, and the module order it draws holds where it matters most (`model` is a leaf).

mod common;

use std::path::Path;

use common::repo;

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The numbered steps of a `## ` section of CONTRIBUTING.md.
fn steps(section: &str) -> Vec<String> {
    let text = read("CONTRIBUTING.md");
    let start = text
        .find(&format!("## {section}"))
        .unwrap_or_else(|| panic!("CONTRIBUTING.md has no section {section:?}"));
    let body = &text[start + 3..];
    let body = &body[..body.find("\n## ").unwrap_or(body.len())];
    body.lines()
        .filter(|l| {
            l.split_once(". **")
                .is_some_and(|(n, _)| n.parse::<u32>().is_ok())
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn adding_a_rule_takes_the_five_touches_contributing_names() {
    let touches = steps("Adding a rule");
    assert_eq!(touches.len(), 5, "{touches:#?}");
    for (touch, names) in touches.iter().zip([
        "src/rules/secret_unused.rs",
        "src/rules/mod.rs",
        "tests/rules/secret-unused/",
        "controls/*.toml",
        "rules --format markdown",
    ]) {
        assert!(touch.contains(names), "{touch:?} should name {names}");
    }

    let catalogue = read("src/rules/mod.rs");
    let controls: String = std::fs::read_dir(repo("controls"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    let readme = read("README.md");
    for id in credaudit::rules::ids() {
        let module = id.replace('-', "_");
        assert!(
            repo(&format!("src/rules/{module}.rs")).is_file(),
            "{id}: no src/rules/{module}.rs"
        );
        assert!(
            catalogue
                .lines()
                .any(|l| l.trim().trim_start_matches("pub ") == format!("mod {module};")),
            "{id}: no catalogue line in src/rules/mod.rs"
        );
        let fixture = repo(&format!("tests/rules/{id}"));
        assert!(
            fixture.join("expected.json").is_file(),
            "{id}: no tests/rules/{id}/expected.json"
        );
        assert!(
            controls.contains(&format!("\"{id}\"")),
            "{id}: no control in controls/ names it"
        );
        assert!(
            readme.contains(&format!("| {id} |")),
            "{id}: not in the README's rule table"
        );
    }
}

#[test]
fn adding_a_framework_takes_the_touches_contributing_names() {
    let touches = steps("Adding a framework");
    assert!(touches.len() <= 5, "{touches:#?}");
    let builtin = read("src/controls.rs");
    for entry in std::fs::read_dir(repo("controls")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            builtin.contains(&format!("include_str!(\"../controls/{name}\")")),
            "controls/{name} is not in BUILTIN"
        );
    }
}

/// `model` is the leaf of the module graph: it imports nothing else of the crate.
#[test]
fn model_imports_nothing_from_the_crate() {
    let mut files = vec![repo("src/model.rs")];
    let folder = repo("src/model");
    if folder.is_dir() {
        files.extend(
            std::fs::read_dir(&folder)
                .unwrap()
                .map(|e| e.unwrap().path()),
        );
    }
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if let Some(path) = line.strip_prefix("use crate::") {
                assert!(
                    path.starts_with("model"),
                    "{}:{}: {line}",
                    file.strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")))
                        .unwrap_or(&file)
                        .display(),
                    n + 1
                );
            }
        }
    }
}
