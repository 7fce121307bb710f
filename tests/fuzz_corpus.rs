//! Replays the fuzz corpora on stable: every file of `fuzz/corpus/<target>/` and
//! `fuzz/regressions/<target>/` goes through its target's entry point in
//! `credaudit::fuzzing` (the same function the nightly fuzz target calls), which must not
//! panic. Bad input is fine (the parsers give an `Err`); a panic is a bug, named with the file.

use std::path::{Path, PathBuf};

use credaudit::fuzzing::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `dir`, sorted (none when it does not exist).
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Every sub-folder of `fuzz/corpus` and `fuzz/regressions` is a known target: a misspelt
/// folder would otherwise be silently skipped.
#[test]
fn every_corpus_folder_names_a_target() {
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir().join(kind)) else {
            continue;
        };
        for entry in entries {
            let entry = entry.unwrap();
            if !entry.path().is_dir() {
                continue; // SOURCES.md, licences
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(
                TARGETS.iter().any(|(target, _)| *target == name),
                "fuzz/{kind}/{name} is not a fuzz target; targets: {:?}",
                TARGETS.map(|(t, _)| t)
            );
        }
    }
}

/// Each target's corpus and regressions replay without a panic; every target has seeds, some
/// of which its parser accepts (so the target reaches the parser: a seed filed at a path the
/// reader ignores would accept nothing), and each target has a fuzz_targets/<target>.rs
/// calling it.
#[test]
fn corpora_replay_without_a_panic() {
    let mut failures = Vec::new();
    let mut replayed = 0;
    for (target, run) in TARGETS {
        let target_file = fuzz_dir().join("fuzz_targets").join(format!("{target}.rs"));
        let source = std::fs::read_to_string(&target_file)
            .unwrap_or_else(|e| panic!("{}: {e}", target_file.display()));
        assert!(
            source.contains(&format!("credaudit::fuzzing::{target}(")),
            "{} must call credaudit::fuzzing::{target}",
            target_file.display()
        );
        let corpus = files(&fuzz_dir().join("corpus").join(target));
        assert!(!corpus.is_empty(), "fuzz/corpus/{target} has no seeds");
        let regressions = files(&fuzz_dir().join("regressions").join(target));
        let mut accepted = 0;
        for file in corpus.iter().chain(&regressions) {
            let bytes = std::fs::read(file).unwrap();
            match std::panic::catch_unwind(|| run(&bytes)) {
                Ok(true) => accepted += 1,
                Ok(false) => {}
                Err(_) => failures.push(file.display().to_string()),
            }
            replayed += 1;
        }
        assert!(accepted > 0, "no seed of fuzz/corpus/{target} is accepted");
    }
    assert!(failures.is_empty(), "panicked on: {failures:#?}");
    assert!(replayed > 0);
}
