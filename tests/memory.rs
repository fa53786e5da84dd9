//! Backpressure keeps memory flat: a fast source feeding a slower consumer blocks instead of
//! queueing, so the largest process of a run stays the same size when the input grows 20x.
//!
//! Measured with getrusage(RUSAGE_CHILDREN): the peak resident size of the largest process
//! among every descendant this test binary has waited for (the launcher reaps the nodes). It
//! is alone in its own test binary so no other test's processes count.

mod util;

use std::io::Write;

use util::{procnet, Scratch};

fn peak_rss_of_children_kib() -> i64 {
    // SAFETY: getrusage writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) }, 0);
    usage.ru_maxrss
}

fn run_lines(s: &Scratch, n: usize) {
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
        rogue.display()
    );
    let file = s.write(&format!("t-{n}.toml"), &toml);
    let r = procnet(["run".as_ref(), file.as_os_str()]).run();
    r.expect_code(0);
    assert_eq!(r.json(), serde_json::json!({"count": n}));
}

#[test]
fn peak_memory_stays_flat_when_input_grows_twentyfold() {
    let s = Scratch::new();
    run_lines(&s, 10_000);
    let small = peak_rss_of_children_kib();
    run_lines(&s, 200_000);
    let large = peak_rss_of_children_kib();
    eprintln!("peak RSS of the largest process: {small} KiB at 10,000 lines, {large} KiB at 200,000");
    // 200,000 lines of 100 bytes are 20 MB; a run that queued them would grow by about that.
    assert!(large <= small + 4 * 1024, "peak RSS grew from {small} KiB to {large} KiB when the input grew 20x");
}
