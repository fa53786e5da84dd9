//! `[hosts]` and a node's `host`: the machines one topology spans.
//!
//! ```toml
//! [hosts.a]
//! address = "10.77.0.1"      # where the other hosts reach this one
//! [nodes.source]
//! kind = "lines"
//! host = "a"
//! ```
//!
//! `host = ["b", "c"]` spreads a node's replicas over several hosts, round-robin (replica 0
//! on `b`, 1 on `c`, 2 on `b`, ...). A node without `host` runs on the local host: the machine `procnet run` runs on. Nodes on
//! one host keep their transport; an edge between two hosts always goes over TCP, so the node
//! that binds its end (the reader of a push port, the publisher of a pub port) gets
//! `transport = "tcp"`, and an explicit `transport = "ipc"` there is an error.
//! `procnet run --local` runs every host's nodes on this machine, each host mapped to the
//! loopback address.

use std::net::IpAddr;

use toml::Spanned;

use super::diagnostic::{Diagnostic, Diagnostics};
use super::draft::{Draft, Inputs};
use super::model::{Delivery, Host, StartMethod, Transport};
use super::names;
use super::port::Pattern;
use super::raw::{Span, Table};
use super::suggest::{did_you_mean, elide};

/// Keys of a host's table.
pub(super) const HOST_KEYS: &[&str] = &["address", "bind"];

/// Read `[hosts]`, if present.
pub(super) fn read_hosts(top: &Table<'_, '_>, diags: &mut Diagnostics) -> Vec<Host> {
    let Some(value) = top.get("hosts") else {
        return Vec::new();
    };
    let Some(hosts) = Table::new(value, "`[hosts]`".into(), diags) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, value) in hosts.entries() {
        let name = key.get_ref().to_string();
        if !names::is_plain(&name) {
            diags.push(
                Diagnostic::error(key.span(), format!("host name `{}` is not allowed", elide(&name)))
                    .with_help("use letters, digits, `_` and `-`"),
            );
            continue;
        }
        // Too long is an error of its own; the host is still declared, for its nodes.
        names::check_length("host name", &Spanned::new(key.span(), name.clone()), diags);
        let Some(t) = Table::new(value, format!("host `{name}`"), diags) else {
            continue;
        };
        let t = t.anchored_at(key.span());
        t.deny_unknown(HOST_KEYS, diags);
        t.require("address", "give the IP address the other hosts reach it at, e.g. `address = \"10.77.0.1\"`", diags);
        // A host with a bad address is still declared (its nodes resolve); the error stops
        // the compile anyway.
        let unspecified = IpAddr::from([0, 0, 0, 0]);
        let address = match t.str("address", diags) {
            None => unspecified,
            Some(address) => match address.get_ref().parse::<IpAddr>() {
                Ok(ip) if ip.is_unspecified() => {
                    diags.push(
                        Diagnostic::error(
                            address.span(),
                            format!("`address` of host `{name}` is {ip}, which no host can reach"),
                        )
                        .with_help("give the address of one of its interfaces"),
                    );
                    ip
                }
                Ok(ip) => ip,
                Err(_) => {
                    diags.push(
                        Diagnostic::error(
                            address.span(),
                            format!("`address` of host `{name}` is not an IP address: `{}`", address.get_ref()),
                        )
                        .with_help(
                            "an IPv4 or IPv6 address, e.g. \"10.77.0.1\": the allowed peers are matched by address",
                        ),
                    );
                    unspecified
                }
            },
        };
        let bind = match t.str("bind", diags) {
            None => address,
            Some(bind) => bind.get_ref().parse::<IpAddr>().unwrap_or_else(|_| {
                diags.push(
                    Diagnostic::error(
                        bind.span(),
                        format!("`bind` of host `{name}` is not an IP address: `{}`", bind.get_ref()),
                    )
                    .with_help("the address its nodes bind to, e.g. \"0.0.0.0\" for every interface"),
                );
                unspecified
            }),
        };
        out.push(Host { name, address, bind });
    }
    out
}

/// A node's `host`: one host (`host = "a"`), or several (`host = ["b", "c"]`: replica `r`
/// runs on the `r`-th, round-robin), as indices into `[hosts]`. Empty: the local host.
pub(super) fn read_host(t: &Table<'_, '_>, hosts: &[Host], replicas: u32, diags: &mut Diagnostics) -> Vec<usize> {
    let Some(value) = t.get("host") else {
        return Vec::new();
    };
    let names: Vec<Spanned<String>> = match value.get_ref() {
        toml::de::DeValue::Array(_) => t.str_list("host", diags).map(Spanned::into_inner).unwrap_or_default(),
        _ => t.str("host", diags).into_iter().collect(),
    };
    if names.is_empty() && matches!(value.get_ref(), toml::de::DeValue::Array(_)) {
        diags.push(
            Diagnostic::error(value.span(), format!("`host` of {} is an empty list", t.what()))
                .with_help("name a host, or leave `host` out to run on the local host"),
        );
    }
    let mut out = Vec::new();
    for name in &names {
        match hosts.iter().position(|h| h.name == *name.get_ref()) {
            Some(i) if out.contains(&i) => diags.push(
                Diagnostic::error(name.span(), format!("{} lists host `{}` twice", t.what(), name.get_ref()))
                    .with_help("replicas go round-robin over the hosts listed: list each once"),
            ),
            Some(i) => out.push(i),
            None => unknown_host(t, name, hosts, diags),
        }
    }
    if out.len() > replicas as usize {
        diags.push(
            Diagnostic::error(
                value.span(),
                format!("{} has {replicas} replica(s) but is placed on {} hosts", t.what(), out.len()),
            )
            .with_help("replica r runs on the r-th host listed: give at least as many replicas as hosts"),
        );
    }
    out
}

fn unknown_host(t: &Table<'_, '_>, name: &Spanned<String>, hosts: &[Host], diags: &mut Diagnostics) {
    let mut d = Diagnostic::error(
        name.span(),
        format!("{} is placed on host `{}`, which `[hosts]` does not declare", t.what(), name.get_ref()),
    );
    d = match did_you_mean(name.get_ref(), hosts.iter().map(|h| h.name.as_str())) {
        Some(near) => d.with_help(format!("did you mean `{near}`?")),
        None if hosts.is_empty() => d.with_help("declare it, like `[hosts.a]` with `address = \"10.77.0.1\"`"),
        None => d.with_help(format!(
            "declared hosts: {}",
            hosts.iter().map(|h| format!("`{}`", h.name)).collect::<Vec<_>>().join(", ")
        )),
    };
    diags.push(d);
}

/// Edges between hosts go over TCP: give the node that binds each such edge's socket
/// `transport = "tcp"`, or report an explicit `"ipc"` there.
pub(super) fn place_edges(drafts: &mut [Draft], inputs: &Inputs, hosts: &[Host], diags: &mut Diagnostics) {
    let host_name = |h: &[usize]| match h {
        [] => "the local host".to_string(),
        [i] => format!("host `{}`", hosts[*i].name),
        many => {
            format!("hosts {}", many.iter().map(|i| format!("`{}`", hosts[*i].name)).collect::<Vec<_>>().join(", "))
        }
    };
    for (reader, ins) in inputs.iter().enumerate() {
        for (input, _) in ins {
            let (up, down) = (&drafts[input.node], &drafts[reader]);
            // Within one host only when both are wholly on the same single host.
            if up.host == down.host && up.host.len() <= 1 {
                continue;
            }
            // The socket's end that binds: the reader's PULL for push, the publisher's XPUB.
            let pub_port = up.ports.get(input.port).is_some_and(|p| p.pattern == Pattern::Pub);
            let binder = if pub_port { input.node } else { reader };
            let why = format!(
                "`{}` on {} reads `{}` on {}",
                down.name.get_ref(),
                host_name(&down.host),
                up.name.get_ref(),
                host_name(&up.host)
            );
            set_tcp(&mut drafts[binder], &why, diags);
        }
    }
}

fn set_tcp(d: &mut Draft, why: &str, diags: &mut Diagnostics) {
    if let (Transport::Ipc, Some(span)) = (d.transport, d.transport_span.take()) {
        // Reported once per node: the span is taken, so a second edge only sets tcp.
        report(diags, span, d.name.get_ref(), why);
        return;
    }
    d.transport = Transport::Tcp;
}

fn report(diags: &mut Diagnostics, span: Span, node: &str, why: &str) {
    diags.push(
        Diagnostic::error(span, format!("node `{node}` has `transport = \"ipc\"`, but {why}: ipc cannot cross hosts"))
            .with_help("remove the key (edges between hosts are tcp), or place both nodes on one host"),
    );
}

/// Warnings where placement changes what a setting means: a process cannot be forked onto
/// another machine, so `fork` and `forkserver` apply per host (each host's launcher forks its
/// own replicas); and with `delivery = "at-most-once"` only the coordinating launcher (the
/// first host's) restarts a replica alone (a rollback restarts every host's).
pub(super) fn placement_warnings(drafts: &[Draft], hosts: &[Host], delivery: Delivery, diags: &mut Diagnostics) {
    for d in drafts {
        let name = d.name.get_ref();
        if d.host.len() > 1 && d.start != StartMethod::Spawn {
            diags.push(
                Diagnostic::warning(
                    d.name.span(),
                    format!(
                        "node `{name}` uses `start = \"{}\"` on {} hosts: each host's launcher forks its own \
                         replicas (a process cannot be forked onto another machine)",
                        d.start.name(),
                        d.host.len()
                    ),
                )
                .with_help("this is allowed; start-up costs and memory sharing are per host"),
            );
        }
        let elsewhere: Vec<&str> = d.host.iter().filter(|&&h| h != 0).map(|&h| hosts[h].name.as_str()).collect();
        if d.restart.on_failure && !elsewhere.is_empty() && delivery == Delivery::AtMostOnce {
            diags.push(
                Diagnostic::warning(
                    d.name.span(),
                    format!(
                        "node `{name}` has `restart = \"on-failure\"`, but with `delivery = \"at-most-once\"` only \
                         the coordinating launcher (host `{}`) restarts replicas: on {} a failure fails the run",
                        hosts[0].name,
                        elsewhere.iter().map(|h| format!("`{h}`")).collect::<Vec<_>>().join(", ")
                    ),
                )
                .with_help("place it on the first host in `[hosts]`, or leave `delivery` out (exactly once rolls back every host)"),
            );
        }
    }
}
