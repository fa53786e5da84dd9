//! A wake-up pipe: lets threads of a node (fetch workers, say) wake the node's one ZeroMQ
//! thread while it waits for input, without sharing a socket between threads.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::error::NodeError;

/// Both ends of a non-blocking pipe. `wake` may be called from any thread.
#[derive(Debug)]
pub struct Waker {
    read: OwnedFd,
    write: OwnedFd,
}

impl Waker {
    /// A new pipe, non-blocking and close-on-exec at both ends.
    pub fn new() -> Result<Waker, NodeError> {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two descriptors into the array we pass.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(NodeError::Io {
                what: "create a wake-up pipe".into(),
                source: std::io::Error::last_os_error(),
            });
        }
        // SAFETY: both descriptors are fresh and owned by nobody else.
        Ok(unsafe { Waker { read: OwnedFd::from_raw_fd(fds[0]), write: OwnedFd::from_raw_fd(fds[1]) } })
    }

    /// Wake the waiting thread. A full pipe already holds a wake-up, so that is not an error.
    pub fn wake(&self) {
        // SAFETY: writes one byte from a valid buffer to our own descriptor.
        unsafe { libc::write(self.write.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
    }

    /// The descriptor to poll for readability.
    pub fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Consume pending wake-ups.
    pub fn drain(&self) {
        let mut buf = [0u8; 256];
        // SAFETY: reads into a valid buffer of the given length from our own descriptor.
        while unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
    }
}
