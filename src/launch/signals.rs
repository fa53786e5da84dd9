//! Ctrl-C and SIGTERM, counted: the handlers only count (an atomic add is all a signal
//! handler may safely do) and the supervisor's loop takes them one by one, so two quick
//! Ctrl-Cs are two, never merged into one. No thread is involved, which also keeps the
//! launcher's fork phase single-threaded.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

static SIGINTS: AtomicUsize = AtomicUsize::new(0);
static SIGTERMS: AtomicUsize = AtomicUsize::new(0);

/// Count SIGINT and SIGTERM from now on (once per process; later calls do nothing).
pub fn install() -> io::Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        // SAFETY: the handlers only do an atomic add, which is async-signal-safe.
        result = unsafe {
            signal_hook::low_level::register(libc::SIGINT, || {
                SIGINTS.fetch_add(1, Ordering::SeqCst);
            })
            .and_then(|_| {
                signal_hook::low_level::register(libc::SIGTERM, || {
                    SIGTERMS.fetch_add(1, Ordering::SeqCst);
                })
            })
            .map(|_| ())
        };
    });
    result
}

/// The next signal received and not taken yet, if any.
pub fn take() -> Option<i32> {
    for (count, signal) in [(&SIGTERMS, libc::SIGTERM), (&SIGINTS, libc::SIGINT)] {
        if count.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Some(signal);
        }
    }
    None
}

/// Block SIGINT and SIGTERM in the calling thread, so they reach the supervisor's (main)
/// thread, whose wait they interrupt.
pub fn block_in_this_thread() {
    // SAFETY: building a signal set on the stack and setting this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}
