//! What the fuzz tests (`tests/formats/fuzz_*.rs`) share: how many inputs and from which seed, a
//! runner seeded with it, the mutations applied to valid inputs, and an allocator that tracks
//! each thread's peak, to check that an input costs memory in proportion to its size.
//!
//! `PROCNET_FUZZ_CASES` sets the number of inputs per target (the default keeps each file well
//! under 30 s in a debug build, as part of `make test`; `make fuzz` runs many more, in release
//! mode). `PROCNET_FUZZ_SEED` sets the seed (a number); each target prints
//! `fuzz <target>: N inputs, seed S`, so a failure reproduces with that seed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

/// A runner for `target`: `PROCNET_FUZZ_CASES` inputs (else `default_cases`), from the seed
/// `PROCNET_FUZZ_SEED` (else one from the clock), announced on stderr.
pub fn runner(target: &str, default_cases: u32) -> TestRunner {
    let cases = std::env::var("PROCNET_FUZZ_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(default_cases);
    let seed = super::seed::seed("PROCNET_FUZZ_SEED");
    eprintln!("fuzz {target}: {cases} inputs, seed {seed}");
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(i as u64).to_le_bytes());
    }
    let config = Config { cases, failure_persistence: None, max_shrink_iters: 2048, ..Config::default() };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// Run `test` on `cases` inputs of `strategy`; on a failure, panic with the smallest failing
/// input proptest found and how to run it again.
pub fn run<S: Strategy>(
    target: &str,
    default_cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let mut runner = runner(target, default_cases);
    if let Err(e) = runner.run(&strategy, test) {
        panic!("fuzz {target} failed (run again with the seed above, PROCNET_FUZZ_SEED=...): {e}");
    }
}

/// A failed input, saying why.
pub fn fail(why: String) -> TestCaseError {
    TestCaseError::fail(why)
}

/// Run `f` on a thread with a large stack: the reference decoders (`rmpv`, `serde_json`)
/// recurse once per level of nesting, up to a thousand levels, which a debug build's
/// frames do not fit in a test thread's 2 MiB.
pub fn with_big_stack(f: impl FnOnce() + Send + 'static) {
    let t = std::thread::Builder::new().stack_size(256 << 20).spawn(f).expect("a thread");
    if let Err(panic) = t.join() {
        std::panic::resume_unwind(panic);
    }
}

/// A change to a valid input: the structured kinds of damage a hostile or broken sender does.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Flip the bits of `mask` in one byte.
    Flip(Index, u8),
    /// Cut the input there.
    Truncate(Index),
    /// Insert these bytes there.
    Insert(Index, Vec<u8>),
    /// Remove up to this many bytes from there.
    Delete(Index, usize),
    /// Write a 32-bit length of 2^32 - 1 there, after a str, bin, array or map marker.
    Huge(Index, u8),
    /// Insert this many one-element array markers there: deep nesting.
    Deepen(Index, usize),
    /// Copy a piece of the input (from, length) to another place: repeated entries.
    Repeat(Index, usize, Index),
}

/// Any mutation.
pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), 1u8..).prop_map(|(i, m)| Mutation::Flip(i, m)),
        2 => any::<Index>().prop_map(Mutation::Truncate),
        2 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..8)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        2 => (any::<Index>(), 1usize..16).prop_map(|(i, n)| Mutation::Delete(i, n)),
        1 => (any::<Index>(), prop::sample::select(vec![0xdbu8, 0xc6, 0xdd, 0xdf, 0xc9])).prop_map(|(i, m)| Mutation::Huge(i, m)),
        1 => (any::<Index>(), prop_oneof![1usize..8, 120usize..140, 250usize..270, 1000usize..1100])
            .prop_map(|(i, n)| Mutation::Deepen(i, n)),
        2 => (any::<Index>(), 1usize..32, any::<Index>()).prop_map(|(a, n, b)| Mutation::Repeat(a, n, b)),
    ]
}

/// `input` with `mutations` applied in turn.
pub fn mutate(mut input: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let at = |i: &Index, len: usize| if len == 0 { 0 } else { i.index(len + 1) };
        match m {
            Mutation::Flip(i, mask) if !input.is_empty() => {
                let p = i.index(input.len());
                input[p] ^= mask;
            }
            Mutation::Flip(..) => {}
            Mutation::Truncate(i) => input.truncate(at(i, input.len())),
            Mutation::Insert(i, bytes) => {
                let p = at(i, input.len());
                input.splice(p..p, bytes.iter().copied());
            }
            Mutation::Delete(i, n) => {
                let p = at(i, input.len());
                let end = (p + n).min(input.len());
                input.drain(p..end);
            }
            Mutation::Huge(i, marker) => {
                let p = at(i, input.len());
                input.splice(p..p, [*marker, 0xff, 0xff, 0xff, 0xff]);
            }
            Mutation::Deepen(i, n) => {
                let p = at(i, input.len());
                input.splice(p..p, std::iter::repeat_n(0x91, *n));
            }
            Mutation::Repeat(from, n, to) if !input.is_empty() => {
                let a = from.index(input.len());
                let piece = input[a..(a + n).min(input.len())].to_vec();
                let b = at(to, input.len());
                input.splice(b..b, piece);
            }
            Mutation::Repeat(..) => {}
        }
    }
    input
}

/// Counts what each thread allocates, to bound what one input costs.
pub struct Counting;

thread_local! {
    static NOW: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    // Ignored while the thread is being torn down (its counters are gone).
    let _ = NOW.try_with(|now| {
        now.set(now.get() + delta);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now.get())));
    });
}

// SAFETY: every call is passed on to the system allocator unchanged; only counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: the caller's guarantees, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: the caller's guarantees, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: the caller's guarantees, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // A reallocation may hold both blocks for a moment: count the new one first.
        count(new_size as isize);
        count(-(layout.size() as isize));
        // SAFETY: the caller's guarantees, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Run `f` and return what it returned with the most it had allocated at once (on this
/// thread, besides what was allocated before).
pub fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = NOW.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    let peak = PEAK.with(Cell::get) - base;
    (out, peak.max(0) as usize)
}
