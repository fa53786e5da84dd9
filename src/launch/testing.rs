//! For the launcher's unit tests: a topology from a TOML string.

use crate::topology::Topology;

/// The topology `text` describes (it must be valid), with paths relative to the repository.
pub fn topology(text: &str) -> Topology {
    let base_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let source = crate::topology::compile::Source::new(std::path::Path::new("t.toml"), text, base_dir);
    crate::topology::compile::compile(&source).map(|(t, _)| t).expect("a valid topology")
}

/// Three hosts (a, b, c), a source on b and a tally on c.
pub fn cluster() -> Topology {
    topology(
        r#"
        [hosts.a]
        address = "127.0.0.1"
        [hosts.b]
        address = "127.0.0.2"
        [hosts.c]
        address = "127.0.0.3"
        [nodes.src]
        kind = "lines"
        path = "Cargo.toml"
        host = "b"
        [nodes.count]
        kind = "tally"
        inputs = ["src"]
        host = "c"
        "#,
    )
}
