//! Replays every input kept under fuzz/corpus/<target>/ and
//! fuzz/regressions/<target>/ through the checks of the cargo-fuzz targets
//! (fuzz/src/checks.rs, included here by path), without libFuzzer, so that a
//! fuzzing finding stays fixed and the seed corpora stay valid.

#[path = "../fuzz/src/checks.rs"]
mod checks;

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = Vec::new();
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(kind).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("readable directory").path();
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if path.is_file() && !hidden {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn replay(target: &str, check: fn(&[u8])) {
    let files = inputs(target);
    assert!(!files.is_empty(), "no kept inputs for the {target} target");
    let mut failed = Vec::new();
    for path in &files {
        let data = std::fs::read(path).expect("readable input");
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    eprintln!("{target}: replayed {} inputs", files.len());
    assert!(
        failed.is_empty(),
        "{} of {} kept inputs fail the {target} checks (the panic of each is printed above): {failed:#?}",
        failed.len(),
        files.len()
    );
}

#[test]
fn parse_response() {
    replay("parse_response", checks::check_parse_response);
}

#[test]
fn parse_get_reply() {
    replay("parse_get_reply", checks::check_parse_get_reply);
}

#[test]
fn key_validation() {
    replay("key_validation", checks::check_key_validation);
}

#[test]
fn encode_roundtrip() {
    replay("encode_roundtrip", checks::check_encode_roundtrip);
}

#[test]
fn parse_meta() {
    replay("parse_meta", checks::check_parse_meta);
}

#[test]
fn parse_meta_many() {
    replay("parse_meta_many", checks::check_parse_meta_many);
}
