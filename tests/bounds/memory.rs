//! Backpressure keeps memory flat: a fast source feeding a slower consumer blocks instead of
//! queueing, so the largest process of a run stays the same size when the input grows 40x.
//!
//! Measured per run with wait4(2) (`util::Run::usage`): the peak resident size of the largest
//! process among the launcher and every node it reaped. (It once read getrusage's
//! RUSAGE_CHILDREN, which counted the `cargo build` of the rogue node too, a bigger peak than
//! any run's: the test could not fail.)

use std::io::Write;

use crate::util::{self, Scratch};

/// Run the pipeline on `n` lines; the peak resident size of its largest process, in KiB.
fn run_lines(s: &Scratch, n: usize) -> u64 {
    let path = s.path(&format!("in-{n}.txt"));
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
    for i in 0..n {
        writeln!(f, "{:<99}", format!("line {i} python")).expect("write");
    }
    f.flush().expect("flush");
    drop(f);
    let rogue = util::rogue();
    let toml = format!(
        r#"
        [nodes.src]
        kind = "lines"
        path = "{}"
        [nodes.f]
        kind = "filter"
        inputs = ["src"]
        field = "line"
        contains = "python"
        [nodes.slow]
        command = ["{}", "crash-after", "999999999"]
        inputs = ["f"]
        [nodes.count]
        kind = "tally"
        inputs = ["slow"]
        "#,
        path.display(),
        rogue
    );
    let r = util::run_ok(s, &toml);
    assert_eq!(r.json(), serde_json::json!({"count": n}));
    r.usage.max_rss_kib
}

#[test]
fn peak_memory_stays_flat_when_input_grows_fortyfold() {
    let s = Scratch::new();
    let small = run_lines(&s, 10_000);
    let large = run_lines(&s, 400_000);
    eprintln!("peak RSS of the largest process: {small} KiB at 10,000 lines, {large} KiB at 400,000");
    // 400,000 lines of 100 bytes are 40 MB; a run that queued them would grow by about that.
    // `lines` keeps up to 8 MiB of its mapped file resident before releasing it (1 MiB at
    // 10,000 lines), so flat means within that window and a little slack.
    assert!(large <= small + 12 * 1024, "peak RSS grew from {small} KiB to {large} KiB when the input grew 40x");
}
