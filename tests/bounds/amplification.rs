//! Memory stays within the bound of docs/protocol.md §9 whatever a frame or a JSON line
//! holds: the reproducers of a hostile user's report (a 60 MB frame of 60 million nils made a
//! sink peak at 6.5 GB; a 60 MB JSON line holding a 30-million-element array, `lines` at
//! 3.3 GB) run here with a memory check.
//!
//! The peak is measured honestly: `procnet run` is this test's child and is reaped with
//! wait4(2), whose `ru_maxrss` is the largest peak resident size among the launcher and every
//! descendant it reaped (each node). A child's peak starts from its parent's, though (the
//! memory it was forked with counts), and a maximum hides whatever is below it: so this test
//! never holds the big inputs or outputs itself (it writes and reads them a piece at a time)
//! and checks that its own peak stays below the 60 MB of a flood, so what is measured is a
//! process of the run. Runs take a lock, so no two floods share the machine.

use std::fs;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use crate::util::{self, Scratch};

/// Nils in a flooding frame: one byte each, so the frame is about 60 MB (under 64 MiB).
const NILS: u64 = 60_000_000;
const MB: i64 = 1 << 20;
/// This test's own resident size must stay under this when it starts a run: a forked child
/// starts with its parent's pages counted, so its peak (from wait4) includes them.
const OWN_PEAK: i64 = 64 * MB;

/// This process's resident size now, in bytes (`VmRSS`). Not `ru_maxrss`: after an exec,
/// that keeps the peak of the process it was forked from (cargo, whose size says nothing of
/// this test's).
fn own_peak() -> i64 {
    let status = fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: i64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmRSS in /proc/self/status");
    kib * 1024
}

/// One flood at a time: the machine is shared.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A finished run and the peak resident size of its largest process.
struct Measured {
    code: i32,
    stdout: String,
    stderr: String,
    peak_kib: i64,
}

impl Measured {
    fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }

    fn last_json(&self) -> serde_json::Value {
        let line = self.stdout.lines().last().unwrap_or_else(|| panic!("no stdout; stderr:\n{}", self.stderr));
        let json = line.split_once(" | ").map_or(line, |(_, rest)| rest);
        serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON ({e}): {json}"))
    }

    /// Fail unless the peak stayed within `times` the size of the `input` bytes, plus what
    /// any run takes (the binary, libzmq, buffers).
    fn expect_peak_within(&self, what: &str, input: i64, times: i64) {
        let bound_kib = (times * input + 48 * MB) / 1024;
        eprintln!("{what}: peak RSS {} MiB (bound {} MiB)", self.peak_kib / 1024, bound_kib / 1024);
        assert!(
            self.peak_kib <= bound_kib,
            "{what}: peak RSS {} KiB over {bound_kib} KiB\n--- stderr\n{}",
            self.peak_kib,
            self.stderr
        );
    }
}

/// Run `procnet run file` from `s`, reaping it with wait4 for its peak memory; killed (and
/// the test failed) after `timeout`.
fn run_measured(s: &Scratch, file: &Path, timeout: Duration) -> Measured {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let own = own_peak();
    assert!(own < OWN_PEAK, "this test's own peak, {} MiB, would count in the run's", own / MB);
    let tag = format!("{}-amplification-{}", std::process::id(), file.display());
    let (out, err) = (s.path("run.stdout"), s.path("run.stderr"));
    // Reaped with wait4 below: Child::wait does not give the usage.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(util::bin())
        .arg("run")
        .arg(file)
        .current_dir(s.dir.path())
        .env(util::TAG_VAR, &tag)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out).expect("stdout file"))
        .stderr(fs::File::create(&err).expect("stderr file"))
        .process_group(0)
        .spawn()
        .expect("spawn procnet");
    let pid = child.id() as i32;
    // The deadline: past it, the whole run is killed, so wait4 below returns.
    let (done, finished) = mpsc::channel::<()>();
    let watchdog_tag = tag.clone();
    let watchdog = std::thread::spawn(move || {
        let late = finished.recv_timeout(timeout).is_err();
        if late {
            for p in util::tagged_pids(&watchdog_tag) {
                // SAFETY: kill(2) of a process of this test's run.
                unsafe { libc::kill(p as i32, libc::SIGKILL) };
            }
            // SAFETY: kill(2) of the test's own child's process group.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        late
    });
    let started = Instant::now();
    let mut status = 0;
    // SAFETY: wait4 writes the status and the usage into the values we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    let _ = done.send(());
    let late = watchdog.join().expect("the watchdog thread");
    let stderr = fs::read_to_string(&err).unwrap_or_default();
    assert!(!late, "procnet did not finish within {timeout:?}\n--- stderr\n{stderr}");
    eprintln!("{}: {:.1} s", file.display(), started.elapsed().as_secs_f64());
    let gone_by = Instant::now() + Duration::from_secs(3);
    while !util::tagged_pids(&tag).is_empty() {
        assert!(Instant::now() < gone_by, "processes of the run outlived it: {:?}", util::tagged_pids(&tag));
        std::thread::yield_now();
    }
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    Measured { code, stdout: tail(&out), stderr, peak_kib: usage.ru_maxrss }
}

/// The last lines of the file at `path` (its last MiB at most): a run that printed hundreds
/// of megabytes must not grow this process, whose peak would count in the next run's (a
/// forked child's peak starts at its parent's size).
fn tail(path: &Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = fs::File::open(path) else { return String::new() };
    let len = f.metadata().map_or(0, |m| m.len());
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(MB as u64)));
    let mut bytes = Vec::new();
    let _ = f.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

fn flood_topology(s: &Scratch, shape: &str, then: &str) -> std::path::PathBuf {
    let toml = format!("[nodes.rogue]\ncommand = [\"{}\", \"flood\", \"{NILS}\", \"{shape}\"]\n{then}", util::rogue());
    s.write("t.toml", &toml)
}

const TIMEOUT: Duration = Duration::from_secs(300);

#[test]
fn a_sink_writes_a_frame_of_sixty_million_nils_without_a_tree() {
    let s = Scratch::new();
    let file =
        flood_topology(&s, "field", "[nodes.out]\nkind = \"sink\"\ninputs = [\"rogue\"]\npath = \"out.jsonl\"\n");
    let r = run_measured(&s, &file, TIMEOUT);
    r.expect_code(0);
    let mut written = fs::File::open(s.path("out.jsonl")).expect("the sink's file");
    let (mut head, mut tail) = ([0u8; 32], [0u8; 8]);
    written.read_exact(&mut head).expect("read the head");
    assert_eq!(&head, br#"{"id":"flood","line":[null,null,"#);
    let len = written.seek(SeekFrom::End(-8)).expect("seek") + 8;
    written.read_exact(&mut tail).expect("read the tail");
    assert_eq!(&tail, b",null]}\n");
    assert_eq!(len, 22 + 5 * NILS - 1 + 3);
    r.expect_peak_within("sink", NILS as i64, 3);
}

#[test]
fn a_filter_on_a_field_of_sixty_million_nils_stays_bounded() {
    let s = Scratch::new();
    let then = "[nodes.f]\nkind = \"filter\"\ninputs = [\"rogue\"]\nfield = \"line\"\ncontains = \"python\"\n\
                [nodes.count]\nkind = \"tally\"\ninputs = [\"f\"]\n";
    let r = run_measured(&s, &flood_topology(&s, "field", then), TIMEOUT);
    // The text of 60 million nils, `[null,null,...]`, would be 300 MB: refused past 64 MiB.
    r.expect_code(65);
    assert_eq!(r.last_json(), serde_json::json!({"count": 0}));
    let why = "field `line`: its JSON text is longer than 67108864 bytes";
    assert!(r.stderr.contains(&format!("node `f.0` dropped 1 bad record\nprocnet:   {why}")), "{}", r.stderr);
    r.expect_peak_within("filter", NILS as i64, 3);
}

#[test]
fn a_frame_laid_out_otherwise_is_read_in_place_too() {
    let s = Scratch::new();
    let then = "[nodes.count]\nkind = \"tally\"\ninputs = [\"rogue\"]\nby = \"id\"\n";
    let r = run_measured(&s, &flood_topology(&s, "reordered", then), TIMEOUT);
    r.expect_code(0);
    assert_eq!(r.last_json(), serde_json::json!({"count": 1, "by": {"flood": 1}}));
    r.expect_peak_within("tally, fields reordered", NILS as i64, 3);
}

#[test]
fn an_invalid_frame_of_sixty_million_nils_is_refused_without_a_tree() {
    let s = Scratch::new();
    let then = "[nodes.count]\nkind = \"tally\"\ninputs = [\"rogue\"]\n";
    let r = run_measured(&s, &flood_topology(&s, "records", then), TIMEOUT);
    r.expect_code(65);
    assert!(r.stderr.contains("data record 0: a record must be a map, found nil"), "{}", r.stderr);
    r.expect_peak_within("tally, records of nils", NILS as i64, 3);
}

/// A `lines` node reading one JSON line, written by `write`, into a tally; and the line's
/// length.
fn lines_topology(s: &Scratch, write: impl FnOnce(&mut dyn Write)) -> (std::path::PathBuf, i64) {
    let mut file = BufWriter::new(fs::File::create(s.path("in.jsonl")).expect("create the input"));
    write(&mut file);
    file.write_all(b"\n").expect("write");
    let len = file.into_inner().expect("flush").metadata().expect("stat").len() as i64;
    let topology = s.write(
        "t.toml",
        "[nodes.src]\nkind = \"lines\"\npath = \"in.jsonl\"\nformat = \"jsonl\"\n\
         [nodes.count]\nkind = \"tally\"\ninputs = [\"src\"]\n",
    );
    (topology, len)
}

/// Write `{"a":[0,0,...]}` or `[0,0,...]`: 30 million zeros, about 60 MB.
fn zeros(object: bool) -> impl FnOnce(&mut dyn Write) {
    move |out| {
        out.write_all(if object { b"{\"a\":[0" } else { b"[0" }).expect("write");
        for _ in 1..30_000_000 {
            out.write_all(b",0").expect("write");
        }
        out.write_all(if object { b"]}" } else { b"]" }).expect("write");
    }
}

#[test]
fn a_json_line_holding_thirty_million_elements_is_sent_without_a_tree() {
    let s = Scratch::new();
    let (file, len) = lines_topology(&s, zeros(true));
    let r = run_measured(&s, &file, TIMEOUT);
    r.expect_code(0);
    assert_eq!(r.last_json(), serde_json::json!({"count": 1}));
    r.expect_peak_within("lines, an object", len, 3);
}

#[test]
fn a_json_line_that_is_a_huge_array_is_refused_without_a_tree() {
    let s = Scratch::new();
    let (file, len) = lines_topology(&s, zeros(false));
    let r = run_measured(&s, &file, TIMEOUT);
    r.expect_code(65);
    assert!(r.stderr.contains("in.jsonl:1: expected a JSON object, found an array"), "{}", r.stderr);
    r.expect_peak_within("lines, an array", len, 3);
}

#[test]
fn a_wide_json_object_with_a_repeated_key_is_handled_without_a_tree() {
    let s = Scratch::new();
    // 5 million keys (about 60 MB), the first repeated at the end.
    let (file, len) = lines_topology(&s, |out| {
        out.write_all(b"{").expect("write");
        for i in 0..5_000_000 {
            write!(out, "\"k{i:07}\":0,").expect("write");
        }
        out.write_all(b"\"k0000000\":1}").expect("write");
    });
    let r = run_measured(&s, &file, TIMEOUT);
    r.expect_code(0);
    assert_eq!(r.last_json(), serde_json::json!({"count": 1}));
    r.expect_peak_within("lines, a wide object", len, 3);
}

#[test]
fn a_tally_by_a_field_of_sixty_million_nils_stays_bounded() {
    let s = Scratch::new();
    let then = "[nodes.count]\nkind = \"tally\"\ninputs = [\"rogue\"]\nby = \"line\"\noutput = \"count.json\"\n";
    let r = run_measured(&s, &flood_topology(&s, "field", then), TIMEOUT);
    r.expect_code(65);
    assert_eq!(fs::read_to_string(s.path("count.json")).expect("the tally"), "{\"count\":0,\"by\":{}}\n");
    assert!(r.stderr.contains("field `line`: its JSON text is longer than 67108864 bytes"), "{}", r.stderr);
    r.expect_peak_within("tally by the field", NILS as i64, 3);
}

#[test]
fn a_sink_template_of_a_field_of_sixty_million_nils_stays_bounded() {
    let s = Scratch::new();
    let then = "[nodes.out]\nkind = \"sink\"\ninputs = [\"rogue\"]\npath = \"out.txt\"\ntemplate = \"{id}: {line}\"\n";
    let r = run_measured(&s, &flood_topology(&s, "field", then), TIMEOUT);
    r.expect_code(65);
    assert_eq!(fs::read_to_string(s.path("out.txt")).expect("the sink's file"), "");
    assert!(r.stderr.contains("field `line`: its JSON text is longer than 67108864 bytes"), "{}", r.stderr);
    r.expect_peak_within("sink with a template", NILS as i64, 3);
}

// A pub port's topic taken from a field holding 60 million nils: its JSON text (300 MB) was
// built whole, however long, in the publisher.
#[test]
fn a_topic_from_a_field_of_sixty_million_nils_stays_bounded() {
    let s = Scratch::new();
    let then = "[nodes.f]\nkind = \"filter\"\ninputs = [\"rogue\"]\nfield = \"id\"\ncontains = \"flood\"\n\
                outputs = { out = { pattern = \"pub\", topic_field = \"line\" } }\n\
                [nodes.count]\nkind = \"tally\"\ninputs = [\"f\"]\n";
    let r = run_measured(&s, &flood_topology(&s, "field", then), TIMEOUT);
    r.expect_code(65);
    assert_eq!(r.last_json(), serde_json::json!({"count": 0}));
    let why =
        "a record not published on port `out`: its topic, field `line`: its JSON text is longer than 67108864 bytes";
    assert!(r.stderr.contains(why), "{}", r.stderr);
    r.expect_peak_within("publisher", NILS as i64, 3);
}
