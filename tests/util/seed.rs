//! Randomness a failure can replay: a seed from an environment variable (else from the clock),
//! which the test prints.

/// The seed in variable `var` (a number), else one from the clock. The caller prints it, with
/// `var`, so that a failure runs again the same way.
pub fn seed(var: &str) -> u64 {
    std::env::var(var).ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    })
}
