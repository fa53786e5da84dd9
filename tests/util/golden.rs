//! The golden vectors of the wire format (`tests/golden/`): where they are, and bytes as
//! `vectors.json` shows them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The directory of the golden files.
pub fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("golden")
}

/// The frames of tests/golden/, valid and not, in file name order.
pub fn golden_frames() -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .expect("tests/golden")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "msgpack"))
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).expect("a golden file")).collect()
}

/// `bytes` in lowercase hexadecimal, two digits each.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
