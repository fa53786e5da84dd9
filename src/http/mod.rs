//! HTTP for the built-in nodes: the client behind `fetch` and the static site behind `serve`.

pub mod client;
pub mod site;
