//! Replaying a fuzz target's corpus (`fuzz/corpus/<target>/`, kept by
//! cargo-fuzz and minimised) in an ordinary `cargo test`: included by the
//! corpus tests of litecloud and haschema, which pass the same check the
//! fuzz target runs.

// Each includer uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// `fuzz/corpus/<target>`.
pub fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// Runs `check` on every file of the target's corpus, naming the file that
/// fails.
pub fn replay(target: &str, check: fn(&[u8])) {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{}: the corpus is missing", dir.display());
    for file in &files {
        let data = std::fs::read(file).unwrap();
        let r = std::panic::catch_unwind(|| check(&data));
        if let Err(e) = r {
            std::panic::resume_unwind(Box::new(format!(
                "{target}: corpus file {} fails: {:?}",
                file.display(),
                e.downcast_ref::<String>()
                    .map(String::as_str)
                    .or(e.downcast_ref::<&str>().copied())
            )));
        }
    }
    eprintln!("{target}: {} corpus files pass", files.len());
}
