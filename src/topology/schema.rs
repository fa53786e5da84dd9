//! The JSON Schema of topology files, for editors: `procnet schema` prints it, and the
//! repository ships it as `topology.schema.json` (pinned by a test below). With taplo (Even
//! Better TOML in VS Code), a file gets completion of keys and values, hover docs and the
//! checks a schema can make as it is typed (docs/topology.md says how to associate it).
//!
//! It is built from the key lists the compiler checks files against ([`compile`]'s top-level,
//! `[defaults]`, node and stdio keys, [`process`]'s, [`ports`]'s, [`hosts`]'s, and each built-in
//! kind's `KEYS`) and from the same lists of values, so a key cannot be added to one and not
//! the other: the tests below fail until it is described here. Ranges written in a kind's
//! `from_table` are pinned by compiling their boundaries.
//!
//! Draft-07, which taplo supports best. taplo completes and documents from `properties`,
//! `$ref`, `anyOf`, `oneOf` and `allOf`, not from `if`/`then`: so every table lists all the
//! keys it may have in `properties` (a node: the keys of every kind), and `if`/`then` on
//! `kind`, `command` and `external` then narrows a node to the keys of what it runs. A
//! schema with `allOf` is not offered for completion itself, so a node has none at its top.

use serde_json::{json, Map, Value};

use super::compile::{
    DEFAULT_KEYS, MAX_REPLICAS, MAX_RESTARTS, MESSAGE_BYTES, NODE_KEYS, RESTARTS, STDIO_KEYS, TOP_KEYS, TRANSPORTS,
};
use super::hosts::HOST_KEYS;
use super::model::{Delivery, StartMethod};
use super::names::MAX_NAME_CHARS;
use super::ports::{INPUT_KEYS, PATTERNS, PORT_KEYS};
use super::process;
use crate::nodes::{Format, Kind, StdioFormat, BUILTINS};

/// What the schema checks and what only procnet does: its top-level description.
const ABOUT: &str = "A procnet topology file (docs/topology.md): the nodes of a process network, their replicas, and \
    which nodes feed which. This schema gives editors completion, hover docs, and the checks of each \
    table's keys (unknown keys are errors, as in procnet), each value's type, range and allowed \
    values, the keys each kind of node takes, and the required ones. `procnet check FILE` checks \
    more, across keys, nodes and the machine, which this schema does not: that every input names a \
    declared node and one of its ports, with no cycle; that `lines` and `serve` have no inputs and \
    other built-ins have some; a built-in's port names; `topics` and `drop` only on pub ports; one \
    replica for a tally, a serve, a sink writing a file and a `lines` reading stdin; `fork` and \
    `forkserver` not for a protocol `command` node, also through `[defaults]`, and no fork server \
    for a `lines` reading stdin; no `restart = \"on-failure\"` on an external node; `host` naming \
    declared hosts, and IP addresses; regular expressions, templates and `connect_to`; `cwd` \
    existing and no NUL in an `env` value; every `${VAR}` set and every `${node.key}` published; no \
    file written by two nodes; the limits of a run (sockets per process, ipc path lengths). String \
    values may hold `${VAR}`, expanded when the file is loaded: where a value must be one of a list, \
    a string with `${` is accepted too.";

/// The schema, as `procnet schema` prints it and `topology.schema.json` holds it.
pub fn json_schema() -> Value {
    let mut top = Map::new();
    for key in TOP_KEYS {
        if let Some(p) = top_property(key) {
            top.insert(key.to_string(), p);
        }
    }
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "procnet topology",
        "description": ABOUT,
        "type": "object",
        "properties": top,
        "required": ["nodes"],
        "additionalProperties": false,
        "definitions": {
            "node": node(),
            "defaults": defaults(),
            "host": host(),
            "port": port(),
            "input": input(),
        },
    })
}

/// [`json_schema`] as text: pretty JSON ending in a newline.
pub fn json_schema_text() -> String {
    serde_json::to_string_pretty(&json_schema()).expect("a JSON value serializes") + "\n"
}

/// A string holding `${`: a variable, which may stand for any of the allowed values.
fn variable() -> Value {
    json!({ "type": "string", "pattern": "\\$\\{" })
}

fn string(description: &str) -> Value {
    json!({ "description": description, "type": "string" })
}

fn non_empty(description: &str) -> Value {
    json!({ "description": description, "type": "string", "minLength": 1 })
}

fn strings(description: &str) -> Value {
    json!({ "description": description, "type": "array", "items": { "type": "string" } })
}

fn boolean(description: &str, default: bool) -> Value {
    json!({ "description": description, "type": "boolean", "default": default })
}

fn integer(description: &str, (least, most): (i64, i64), default: Option<i64>) -> Value {
    let mut v = json!({ "description": description, "type": "integer", "minimum": least, "maximum": most });
    if let Some(d) = default {
        v["default"] = d.into();
    }
    v
}

/// One of `names` (or a string with a variable).
fn choice(description: &str, names: &[&str], default: Option<&str>) -> Value {
    let mut v = json!({ "description": description });
    if let Some(d) = default {
        v["default"] = d.into();
    }
    v["anyOf"] = json!([{ "type": "string", "enum": names }, variable()]);
    v
}

/// A table whose keys are names (nodes, hosts, ports): plain and short.
fn names(description: &str, values: Value) -> Value {
    json!({
        "description": description,
        "type": "object",
        "propertyNames": { "pattern": "^[A-Za-z0-9_-]+$", "maxLength": MAX_NAME_CHARS },
        "additionalProperties": values,
    })
}

fn top_property(key: &str) -> Option<Value> {
    Some(match key {
        "name" => json!({
            "description": "The topology's name, used in messages (at most 64 characters). Default: the file's \
                name without its extension.",
            "anyOf": [{ "type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS }, variable()],
        }),
        "delivery" => choice(
            "What a failure mid-stream may cost. `exactly-once`: nothing, the run rolls back and every node \
             starts again from the beginning; `at-most-once`: the records in flight, as the failed replica \
             alone restarts and the run exits 1 (docs/guarantees.md).",
            Delivery::NAMES,
            Some(Delivery::NAMES[0]),
        ),
        "defaults" => json!({ "$ref": "#/definitions/defaults" }),
        "hosts" => names(
            "The machines the topology spans, for cluster experiments: one table per host, its key the host's \
             name. Nodes say where they run with `host`; run with `--local`, `--host NAME`, or `export k8s`.",
            json!({ "$ref": "#/definitions/host" }),
        ),
        "nodes" => {
            let mut v = names(
                "One table per node; its key is the node's name (letters, digits, `_` and `-`, at most 64 \
                 characters).",
                json!({ "$ref": "#/definitions/node" }),
            );
            v["minProperties"] = 1.into();
            v
        }
        _ => return None,
    })
}

/// A key both `[defaults]` and a node take; `defaults` says which of the two describes it.
fn inherited(key: &str, defaults: bool) -> Option<Value> {
    let from = |text: &str| {
        if defaults {
            format!("{text} For every node that does not say otherwise.")
        } else {
            format!("{text} Default: from `[defaults]`.")
        }
    };
    let default = |v: &'static str| defaults.then_some(v);
    Some(match key {
        "transport" => choice(
            &from(
                "How the sockets a node binds (its input, its pub ports) are reached: `ipc`, a Unix socket in \
                 the run's private directory, or `tcp`, 127.0.0.1 on a port the OS chooses.",
            ),
            TRANSPORTS,
            default("ipc"),
        ),
        "start" => choice(
            &from(
                "How a node's processes start (docs/start-methods.md): `spawn` executes a fresh process; `fork` \
                 and `forkserver` fork procnet's code without exec, so they are for built-in kinds and stdio \
                 nodes: a protocol `command` node is always spawned.",
            ),
            StartMethod::NAMES,
            default("spawn"),
        ),
        "restart" => choice(
            &from(
                "What happens when a replica exits non-zero or is killed: `never`, the run fails; `on-failure`, \
                 it is restarted after a backoff (exactly once: the run rolls back).",
            ),
            RESTARTS,
            default("never"),
        ),
        "max_restarts" => integer(
            &from("How many times one replica may be restarted before the run fails (0 to 100)."),
            (0, MAX_RESTARTS),
            defaults.then_some(3),
        ),
        "max_message_bytes" => integer(
            &from(
                "The largest message a node's input sockets accept (1 MiB to 2^40 bytes): a bigger one is \
                 dropped before it is allocated, counted, and the run exits 65.",
            ),
            MESSAGE_BYTES,
            defaults.then_some(super::model::DEFAULT_MAX_MESSAGE_BYTES as i64),
        ),
        _ => return None,
    })
}

fn defaults() -> Value {
    let mut properties = Map::new();
    for key in DEFAULT_KEYS {
        if let Some(p) = inherited(key, true) {
            properties.insert(key.to_string(), p);
        }
    }
    json!({
        "description": "Defaults for every node; each key can also be set per node.",
        "type": "object",
        "properties": properties,
        "additionalProperties": false,
    })
}

/// A key every node takes, whatever it runs; or a key of a `command` node's program or its
/// `stdio` (`field` with `stdio`).
fn node_property(key: &str) -> Option<Value> {
    if let Some(p) = inherited(key, false) {
        return Some(p);
    }
    Some(match key {
        "kind" => choice(
            "A built-in kind (docs/nodes.md): `lines` reads a file, `fetch` fetches URLs over HTTP, `filter` \
             keeps matching records, `tally` counts, `sink` writes records, `serve` serves an offline site. A \
             node has exactly one of `kind`, `command` and `external = true`.",
            BUILTINS,
            None,
        ),
        "command" => json!({
            "description": "Any program as a node: the program and its arguments, e.g. \
                [\"python3\", \"bin/check.py\"]. It speaks the wire protocol (docs/protocol.md), or with `stdio` \
                reads and writes lines. A program with a `/` is relative to the topology's directory; a bare name is \
                looked up on PATH.",
            "type": "array",
            "items": { "type": "string" },
            "minItems": 1,
        }),
        "external" => boolean(
            "`true`: the launcher does not start this node's processes; `procnet run` prints the environment \
             each replica needs and waits for you to start them. An external node has no `kind`, `command` or \
             `restart`.",
            false,
        ),
        "inputs" => json!({
            "description": "What this node reads: ports of other nodes, each `\"node\"` (its `out` port), \
                `\"node.port\"`, or a table `{ from = \"node.port\", topics = [...], drop = true }`. A push port's \
                records are load-balanced over this node's replicas; a pub port's reach each replica.",
            "type": "array",
            "items": { "$ref": "#/definitions/input" },
            "default": [],
        }),
        "outputs" => names(
            "This node's output ports, each `\"push\"` (load-balanced), `\"pub\"` (broadcast, by topic) or a \
             table `{ pattern = ..., topic_field = ... }`. A built-in's ports are fixed (`out`; a tally's \
             `progress`; none for sink and serve): `outputs` may change their pattern. A command's `outputs` \
             replaces its ports (by default `out`, push).",
            json!({ "$ref": "#/definitions/port" }),
        ),
        "replicas" => integer(
            "How many processes run this node (1 to 1024). A tally, a serve, a sink writing a file and a \
             `lines` reading stdin run one.",
            (1, MAX_REPLICAS),
            Some(1),
        ),
        "host" => json!({
            "description": "The host of `[hosts]` this node runs on; with several (each once), its replicas go \
                round-robin over them. Default: the local host.",
            "anyOf": [
                { "type": "string" },
                { "type": "array", "items": { "type": "string" }, "minItems": 1, "uniqueItems": true },
            ],
        }),
        "env" => json!({
            "description": "`command` nodes only: variables added to the environment of its processes, after the \
                `PROCNET_*` ones (which it may not name). Names are letters, digits and `_`; values are strings.",
            "type": "object",
            "propertyNames": { "pattern": "^[A-Za-z_][A-Za-z0-9_]*$", "not": { "pattern": "^PROCNET_" } },
            "additionalProperties": { "type": "string" },
        }),
        "cwd" => non_empty(
            "`command` nodes only: the directory its processes run in, relative to the topology's directory \
             (the default); it must exist when the topology is loaded.",
        ),
        "stdio" => choice(
            "With `command`: the program is no protocol node but reads records on stdin and writes records on \
             stdout, one per line. `jsonl`: JSON objects; `lines`: text lines, a record's `field` written and a \
             line read becoming `{field: line}`.",
            StdioFormat::NAMES,
            None,
        ),
        "field" => {
            let mut v = non_empty(
                "The field a record's line is read from and a line read is written to (with `stdio = \"lines\"`).",
            );
            v["default"] = "line".into();
            v
        }
        _ => return None,
    })
}

/// An option of built-in kind `kind`.
fn kind_property(kind: &str, key: &str) -> Option<Value> {
    let ms = |description: &str, default| integer(description, (0, 600_000), Some(default));
    Some(match (kind, key) {
        ("lines", "path") => non_empty(
            "The file to read, relative to the topology's directory; \"-\" reads the launcher's stdin (one \
             replica).",
        ),
        ("lines", "format") => choice(
            "`text`: each line becomes `{field: line}`; `jsonl`: each line is a JSON object, which becomes the \
             record.",
            Format::NAMES,
            Some("text"),
        ),
        ("lines", "field") => {
            let mut v = string("The field a text line goes in (not with `format = \"jsonl\"`).");
            v["default"] = "line".into();
            v
        }
        ("fetch", "url_field") => {
            let mut v = non_empty("The field holding the URL.");
            v["default"] = "url".into();
            v
        }
        ("fetch", "concurrency") => integer("Requests in flight per replica.", (1, 1024), Some(16)),
        ("fetch", "timeout_ms") => {
            integer("The limit for a whole request, redirects included, in ms.", (1, 3_600_000), Some(10_000))
        }
        ("fetch", "retries") => integer(
            "Extra attempts, only after a connect error, a timeout or a 5xx answer (after 100 ms, then 200 ms, \
             ...).",
            (0, 10),
            Some(1),
        ),
        ("fetch", "max_body_bytes") => {
            integer("Bodies are cut after this many bytes.", (1, 1 << 34), Some(10 * 1024 * 1024))
        }
        ("fetch", "user_agent") => non_empty("The User-Agent header. Default: \"procnet/<version>\"."),
        ("fetch", "max_redirects") => integer("Redirects followed before giving up.", (0, 100), Some(10)),
        ("fetch", "connect_to") => non_empty(
            "Send every request to this address instead of the URL's host (the Host header keeps it), like \
             curl's --connect-to: `host:port`, `http://host:port`, or a published value such as \
             \"${site.url}\".",
        ),
        ("filter", "field") => string("The record field to test (required)."),
        ("filter", "contains") => {
            string("Keep the records whose field contains this text. Exactly one of `contains` and `regex`.")
        }
        ("filter", "regex") => string(
            "Keep the records whose field matches this regular expression (Rust `regex` syntax). Exactly one of \
             `contains` and `regex`.",
        ),
        ("filter", "ignore_case") => boolean("Match regardless of case (Unicode case folding).", false),
        ("filter", "invert") => boolean("Keep the records that do not match instead.", false),
        ("tally", "by") => string("Also count per value of this field; records without it count under \"(missing)\"."),
        ("tally", "by_host") => {
            boolean("Count per host of the URL in `by` instead of per whole value (needs `by`).", false)
        }
        ("tally", "output") => {
            non_empty("The file to write the result to, whole or not at all. Default: stdout (as is \"-\").")
        }
        ("tally", "template") => {
            string("Write the result as this template instead of JSON: `{count}`, and `{by}` (the counts as JSON).")
        }
        ("sink", "path") => non_empty(
            "The file to write, whole or not at all; a sink writing a file runs one replica. Default: stdout (as \
             is \"-\").",
        ),
        ("sink", "template") => string(
            "Write each record as this template instead of a JSON line: `{field}` placeholders, `{{` and `}}` for \
             braces.",
        ),
        ("serve", "dir") => non_empty("The directory to serve, relative to the topology's directory (required)."),
        ("serve", "latency_ms") => ms("A delay before every answer, in ms.", 0),
        ("serve", "forbidden") => {
            let mut v = strings("Pages answered with 403: prefixes of `host/path`, e.g. \"acme.test/private/\".");
            v["default"] = json!([]);
            v
        }
        ("serve", "slow") => {
            let mut v = strings("Pages answered `slow_ms` later: prefixes of `host/path`.");
            v["default"] = json!([]);
            v
        }
        ("serve", "slow_ms") => ms("The extra delay of slow pages, in ms.", 1000),
        _ => return None,
    })
}

/// Every key a node may have, in the compiler's order: the common ones, a command's program
/// and stdio, then each kind's options.
fn all_node_keys() -> Vec<&'static str> {
    let mut keys: Vec<&str> = NODE_KEYS.iter().chain(process::KEYS).chain(STDIO_KEYS).copied().collect();
    for kind in BUILTINS {
        for key in Kind::keys(kind) {
            if !keys.contains(key) {
                keys.push(key);
            }
        }
    }
    keys
}

/// The one schema of `key` in a node's `properties`: a kind's option, or for a key several
/// kinds (or `stdio`) share, its type with every meaning in its description (the exact
/// schema of each is in the `then` of what the node runs).
fn union_property(key: &str) -> Option<Value> {
    let mut owners: Vec<(String, Value)> = Vec::new();
    if let Some(p) = node_property(key) {
        owners.push(("On a `command` node with `stdio`".into(), p));
    }
    for kind in BUILTINS {
        if let Some(p) = kind_property(kind, key) {
            owners.push((format!("On a `{kind}` node"), p));
        }
    }
    let (_, first) = owners.first()?;
    if owners.len() == 1 {
        return Some(first.clone());
    }
    let meanings: Vec<String> = owners
        .iter()
        .map(|(who, p)| format!("{who}: {}", lowercase_first(p["description"].as_str().unwrap_or_default())))
        .collect();
    let mut merged = json!({ "description": meanings.join("\n\n"), "type": first["type"] });
    if owners.iter().all(|(_, p)| p.get("default") == first.get("default")) {
        if let Some(d) = first.get("default") {
            merged["default"] = d.clone();
        }
    }
    Some(merged)
}

/// A description, to follow a colon.
fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |c| c.to_lowercase().chain(chars).collect())
}

/// `keys` without `except`, as the values `propertyNames` may take.
fn only(keys: impl IntoIterator<Item = &'static str>, except: &[&str]) -> Value {
    let keys: Vec<&str> = keys.into_iter().filter(|k| !except.contains(k)).collect();
    json!({ "enum": keys })
}

fn node() -> Value {
    let mut properties = Map::new();
    for key in all_node_keys() {
        if let Some(p) = union_property(key) {
            properties.insert(key.to_string(), p);
        }
    }
    let kinds: Vec<Value> = BUILTINS.iter().map(|k| kind_rules(k)).collect();
    let command = NODE_KEYS.iter().chain(process::KEYS).copied();
    let stdio = NODE_KEYS.iter().chain(process::KEYS).chain(STDIO_KEYS).copied();
    json!({
        "description": "A node: a built-in `kind`, a `command`, or `external = true`, with its replicas, inputs and \
            outputs.",
        "type": "object",
        "properties": properties,
        "additionalProperties": false,
        "if": { "properties": { "external": { "const": true } }, "required": ["external"] },
        "then": { "propertyNames": only(NODE_KEYS.iter().copied(), &["kind", "command"]) },
        "else": {
            "if": { "required": ["kind"] },
            "then": { "allOf": kinds },
            "else": {
                "if": { "required": ["command"] },
                "then": {
                    "if": { "required": ["stdio"] },
                    "then": {
                        "propertyNames": only(stdio, &["kind"]),
                        "properties": { "field": node_property("field") },
                        "if": { "properties": { "stdio": { "const": "jsonl" } }, "required": ["stdio"] },
                        "then": { "not": { "required": ["field"] } },
                    },
                    "else": { "propertyNames": only(command, &["kind"]) },
                },
                "else": { "required": ["kind"] },
            },
        },
    })
}

/// What a node of built-in kind `kind` may and must have: its keys, their exact schemas, the
/// required ones, and the rules between its keys.
pub(super) fn kind_rules(kind: &str) -> Value {
    let keys = Kind::keys(kind);
    let mut properties = Map::new();
    for key in keys {
        if let Some(p) = kind_property(kind, key) {
            properties.insert(key.to_string(), p);
        }
    }
    let mut then = json!({
        "propertyNames": only(NODE_KEYS.iter().chain(keys).copied(), &["command"]),
        "properties": properties,
    });
    // `if`: the node has `key = value`.
    let has = |key: &str, value: Value| json!({ "properties": { key: { "const": value } }, "required": [key] });
    let (required, rules): (&[&str], Value) = match kind {
        "lines" => {
            (&["path"], json!([{ "if": has("format", "jsonl".into()), "then": { "not": { "required": ["field"] } } }]))
        }
        "filter" => (&["field"], json!([{ "oneOf": [{ "required": ["contains"] }, { "required": ["regex"] }] }])),
        "tally" => (&[], json!([{ "if": has("by_host", true.into()), "then": { "required": ["by"] } }])),
        "serve" => (&["dir"], json!([])),
        _ => (&[], json!([])),
    };
    if !required.is_empty() {
        then["required"] = json!(required);
    }
    if rules.as_array().is_some_and(|r| !r.is_empty()) {
        then["allOf"] = rules;
    }
    json!({ "if": { "properties": { "kind": { "const": kind } }, "required": ["kind"] }, "then": then })
}

fn host() -> Value {
    let property = |key: &str| match key {
        "address" => Some(string(
            "The IP address (v4 or v6, not a name) the other hosts reach this one at; its nodes bind their tcp \
             sockets on it. Required.",
        )),
        "bind" => Some(string(
            "The address its nodes bind to instead, e.g. \"0.0.0.0\" for a host behind NAT whose `address` is \
             not one of its interfaces.",
        )),
        _ => None,
    };
    json!({
        "description": "A machine the topology spans.",
        "type": "object",
        "properties": keyed(HOST_KEYS, property),
        "required": ["address"],
        "additionalProperties": false,
    })
}

fn port() -> Value {
    let property = |key: &str| match key {
        "pattern" => Some(choice(
            "`push`: every node reading the port gets each record once, load-balanced over its replicas; `pub`: \
             every replica of every subscriber gets each record whose topic it subscribed to.",
            PATTERNS,
            None,
        )),
        "topic_field" => Some(string(
            "A pub port's topic, from this field of each record (its text; a record without it has the empty \
             topic). Not with `topic`.",
        )),
        "topic" => Some(string("A pub port's topic, the same for every record. Not with `topic_field`.")),
        _ => None,
    };
    json!({
        "description": "An output port: `\"push\"`, `\"pub\"`, or a table with its `pattern` and a pub port's topic.",
        "anyOf": [
            choice("The port's pattern.", PATTERNS, None),
            {
                "type": "object",
                "properties": keyed(PORT_KEYS, property),
                "required": ["pattern"],
                "additionalProperties": false,
                "not": { "required": ["topic_field", "topic"] },
                "if": { "properties": { "pattern": { "const": "push" } }, "required": ["pattern"] },
                "then": { "not": { "anyOf": [{ "required": ["topic_field"] }, { "required": ["topic"] }] } },
            },
        ],
    })
}

fn input() -> Value {
    let property = |key: &str| match key {
        "from" => Some(string("The port read: `\"node\"` (its `out` port) or `\"node.port\"`. Required.")),
        "topics" => Some(strings(
            "A pub port only: read the records whose topic starts with one of these prefixes (every record \
             without it, or with `[]`).",
        )),
        "drop" => Some(boolean(
            "A pub port only: lose records rather than slow the publisher down when this node is full; drops \
             are counted and reported.",
            false,
        )),
        _ => None,
    };
    json!({
        "description": "A port of another node: `\"node\"`, `\"node.port\"`, or a table with `from`.",
        "anyOf": [
            { "type": "string" },
            {
                "type": "object",
                "properties": keyed(INPUT_KEYS, property),
                "required": ["from"],
                "additionalProperties": false,
            },
        ],
    })
}

/// The `properties` of a table with `keys`, each described by `property`.
fn keyed(keys: &[&str], property: impl Fn(&str) -> Option<Value>) -> Map<String, Value> {
    keys.iter().filter_map(|k| property(k).map(|p| (k.to_string(), p))).collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::topology::compile::{compile, Source};

    fn properties<'a>(schema: &'a Value, what: &str) -> &'a Map<String, Value> {
        schema["properties"].as_object().unwrap_or_else(|| panic!("{what} has properties"))
    }

    fn keys(map: &Map<String, Value>) -> Vec<&str> {
        map.keys().map(String::as_str).collect()
    }

    /// The schema shipped for editors, `topology.schema.json` at the repository's root, is what
    /// `procnet schema` prints. `UPDATE_GOLDEN=1` rewrites it.
    #[test]
    fn the_golden_schema() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("topology.schema.json");
        let text = json_schema_text();
        if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
            std::fs::write(&path, &text).expect("write topology.schema.json");
        }
        let golden = std::fs::read_to_string(&path).expect("topology.schema.json (UPDATE_GOLDEN=1 writes it)");
        assert!(
            golden == text,
            "topology.schema.json differs from `procnet schema`: regenerate it with UPDATE_GOLDEN=1"
        );
    }

    // A key the compiler takes and the schema lacks would be an error in every editor; one the
    // schema has and the compiler does not, an error at `procnet check`.
    #[test]
    fn every_key_the_compiler_takes_is_in_the_schema_and_no_other() {
        let schema = json_schema();
        let defs = &schema["definitions"];
        let tables: [(&str, &Value, Vec<&str>); 6] = [
            ("the top level", &schema, TOP_KEYS.to_vec()),
            ("[defaults]", &defs["defaults"], DEFAULT_KEYS.to_vec()),
            ("a node", &defs["node"], all_node_keys()),
            ("a host", &defs["host"], HOST_KEYS.to_vec()),
            ("a port", &defs["port"]["anyOf"][1], PORT_KEYS.to_vec()),
            ("an input", &defs["input"]["anyOf"][1], INPUT_KEYS.to_vec()),
        ];
        for (what, table, expected) in tables {
            let props = properties(table, what);
            assert_eq!(keys(props), expected, "the keys of {what}");
            assert_eq!(table["additionalProperties"], false, "{what} takes no other key");
            for (key, p) in props {
                let text = p["description"].as_str().or(p["$ref"].as_str()).unwrap_or_default();
                assert!(!text.is_empty(), "`{key}` of {what} has a description");
            }
        }
        for key in NODE_KEYS.iter().chain(process::KEYS).chain(STDIO_KEYS) {
            assert!(properties(&defs["node"], "a node").contains_key(*key), "node key `{key}`");
        }
        for kind in BUILTINS {
            let then = &kind_rules(kind)["then"];
            assert_eq!(keys(properties(then, kind)), Kind::keys(kind), "the options of `{kind}`");
            let allowed: Vec<&str> =
                NODE_KEYS.iter().chain(Kind::keys(kind)).copied().filter(|k| *k != "command").collect();
            assert_eq!(then["propertyNames"]["enum"], json!(allowed), "the keys of a `{kind}` node");
        }
    }

    /// A minimal valid node of each kind, read by nobody or reading `src`.
    fn minimal(kind: &str) -> &'static str {
        match kind {
            "lines" => "kind = \"lines\"\npath = \"more.txt\"\n",
            "fetch" => "kind = \"fetch\"\ninputs = [\"src\"]\n",
            "filter" => "kind = \"filter\"\ninputs = [\"src\"]\nfield = \"line\"\ncontains = \"x\"\n",
            "tally" => "kind = \"tally\"\ninputs = [\"src\"]\n",
            "sink" => "kind = \"sink\"\ninputs = [\"src\"]\n",
            "serve" => "kind = \"serve\"\ndir = \"site\"\n",
            other => panic!("no minimal node of kind `{other}`"),
        }
    }

    /// Whether the compiler takes a topology of a source `src` and node `n` made of `node`,
    /// with `defaults` as its `[defaults]`.
    fn compiles(defaults: &str, node: &str) -> bool {
        let text =
            format!("[defaults]\n{defaults}\n[nodes.src]\nkind = \"lines\"\npath = \"in.txt\"\n\n[nodes.n]\n{node}");
        let base = std::env::temp_dir();
        compile(&Source::new(Path::new("t.toml"), &text, &base)).is_ok()
    }

    /// The integer keys of `table`'s properties with their bounds.
    fn ranges(table: &Value) -> Vec<(String, i64, i64)> {
        let mut out = Vec::new();
        for (key, p) in table["properties"].as_object().into_iter().flatten() {
            if p["type"] == "integer" {
                let bound = |b: &str| p[b].as_i64().unwrap_or_else(|| panic!("`{key}` has a {b}"));
                out.push((key.clone(), bound("minimum"), bound("maximum")));
            }
        }
        out
    }

    // The ranges of a kind's options are written in its `from_table` and here: the schema's
    // bounds must be exactly the compiler's.
    #[test]
    fn every_range_is_the_compilers() {
        let schema = json_schema();
        let mut checked = 0;
        let mut check = |what: &str, ok: &dyn Fn(i64) -> bool, (key, least, most): (String, i64, i64)| {
            assert!(ok(least) && ok(most), "{what} `{key}` takes {least} and {most}");
            assert!(!ok(least - 1) && !ok(most + 1), "{what} `{key}` takes neither {} nor {}", least - 1, most + 1);
            checked += 1;
        };
        for r in ranges(&schema["definitions"]["defaults"]) {
            let key = r.0.clone();
            check("[defaults]", &|v| compiles(&format!("{key} = {v}"), minimal("filter")), r);
        }
        // A kind's options are in a node's `properties` too, with their kind's schema.
        for r in ranges(&schema["definitions"]["node"]).into_iter().filter(|r| NODE_KEYS.contains(&r.0.as_str())) {
            let key = r.0.clone();
            check("a node's", &|v| compiles("", &format!("{}{key} = {v}\n", minimal("filter"))), r);
        }
        for kind in BUILTINS {
            for r in ranges(&kind_rules(kind)["then"]) {
                let key = r.0.clone();
                check(kind, &|v| compiles("", &format!("{}{key} = {v}\n", minimal(kind))), r);
            }
        }
        assert!(checked >= 10, "only {checked} ranges checked");
    }

    #[test]
    fn the_required_options_are_the_compilers() {
        for kind in BUILTINS {
            let node = minimal(kind);
            assert!(compiles("", node), "the minimal `{kind}` node compiles");
            let then = &kind_rules(kind)["then"];
            for key in then["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                let without: String =
                    node.lines().filter(|l| !l.starts_with(&format!("{key} ="))).map(|l| format!("{l}\n")).collect();
                assert!(!compiles("", &without), "a `{kind}` node without `{key}` is refused");
            }
        }
    }
}
