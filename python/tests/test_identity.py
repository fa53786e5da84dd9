"""The replica contract (docs/protocol.md §2.2): the environment the launcher writes, as the Rust
side pins it in tests/contract/env.json, reads back to the same identity here."""

import dataclasses
import json
import pathlib

import pytest

from procnet import Identity, Node

GOLDEN = pathlib.Path(__file__).resolve().parents[2] / "tests" / "contract" / "env.json"


def golden():
    doc = json.loads(GOLDEN.read_text())
    return dict(doc["env"]), doc["identity"]


def test_the_golden_environment_reads_as_the_rust_side_wrote_it():
    env, identity = golden()
    assert dataclasses.asdict(Identity.from_env(env)) == identity
    assert Identity.from_env(env).id == "keep.1"
    # A replica started before (PROCNET_ATTEMPT 3) names its attempt in its routing id.
    assert Identity.from_env(env).routing_id == "keep.1#3"


def test_a_node_takes_its_identity_from_the_environment():
    env, _ = golden()
    node = Node(env=env)
    assert (node.name, node.replica, node.replicas, node.id) == ("keep", 1, 3, "keep.1")


def test_unset_variables_read_as_their_defaults():
    env, _ = golden()
    for var in ("PROCNET_BIND", "PROCNET_PUB", "PROCNET_CONFIG", "PROCNET_SECRET", "PROCNET_ALLOW",
                "PROCNET_RUN_DIR", "PROCNET_MAX_MESSAGE_BYTES", "PROCNET_RESTART", "PROCNET_ATTEMPT",
                "PROCNET_TOPOLOGY"):
        del env[var]
    me = Identity.from_env(env)
    assert (me.bind, me.pub_ports, me.config, me.secret, me.allow, me.restart, me.attempt) == (None, {}, None, None, [], 0, 0)
    assert me.routing_id == me.id


def test_another_protocol_version_is_refused():
    env, _ = golden()
    env["PROCNET_PROTOCOL"] = "2"
    with pytest.raises(SystemExit, match="launcher speaks protocol 2, this node 1"):
        Identity.from_env(env)
