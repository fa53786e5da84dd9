"""Who a replica is: the ``PROCNET_*`` environment the launcher writes (docs/protocol.md §2.2),
read in one place. The Rust side writes and reads the same (``runtime::Identity``); the golden
file ``tests/contract/env.json`` pins both.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field


@dataclass
class Identity:
    """A replica's identity and endpoints, as the launcher set them."""

    node: str
    replica: int
    replicas: int
    control: str
    topology: str = ""
    run_dir: str | None = None
    restart: int = 0
    attempt: int = 0  # PROCNET_ATTEMPT: how many times this replica was started before
    max_message_bytes: int | None = None
    grace_ms: int | None = None  # PROCNET_GRACE_MS: how long the launcher waits once it asks to end
    bind: str | None = None  # PROCNET_BIND: set only for a node that reads a push port
    pub_ports: dict = field(default_factory=dict)  # PROCNET_PUB: socket key -> endpoint
    config: str | None = None  # a built-in node's options, JSON
    secret: str | None = None  # §3.6: presented to, and asked of, every tcp peer
    allow: list = field(default_factory=list)  # §3.6: with [hosts], the addresses allowed

    @property
    def id(self):
        """``name.replica``."""
        return f"{self.node}.{self.replica}"

    @property
    def routing_id(self):
        """The control socket's routing id (§3.1): ``name.replica``, then
        ``name.replica#attempt`` from the replica's second start on."""
        return self.id if self.attempt == 0 else f"{self.id}#{self.attempt}"

    @classmethod
    def from_env(cls, env):
        """Read the identity from ``env`` (a mapping such as ``os.environ``). Exits, with the
        reason on stderr, when the launcher speaks another protocol version (§10) or a variable
        a node needs is missing."""
        if env.get("PROCNET_PROTOCOL") != "1":  # §10: before anything else
            sys.exit(f"launcher speaks protocol {env.get('PROCNET_PROTOCOL')}, this node 1")
        for var in ("PROCNET_NODE", "PROCNET_REPLICA", "PROCNET_REPLICAS", "PROCNET_CONTROL"):
            if not env.get(var):
                sys.exit(f"environment variable {var} is not set; procnet nodes are started by `procnet run`")
        return cls(
            node=env["PROCNET_NODE"],
            replica=int(env["PROCNET_REPLICA"]),
            replicas=int(env["PROCNET_REPLICAS"]),
            control=env["PROCNET_CONTROL"],
            topology=env.get("PROCNET_TOPOLOGY") or "",
            run_dir=env.get("PROCNET_RUN_DIR") or None,
            restart=int(env.get("PROCNET_RESTART") or 0),
            attempt=int(env.get("PROCNET_ATTEMPT") or 0),
            max_message_bytes=int(env["PROCNET_MAX_MESSAGE_BYTES"]) if env.get("PROCNET_MAX_MESSAGE_BYTES") else None,
            grace_ms=int(env["PROCNET_GRACE_MS"]) if env.get("PROCNET_GRACE_MS") else None,
            bind=env.get("PROCNET_BIND") or None,
            pub_ports=json.loads(env.get("PROCNET_PUB") or "{}"),
            config=env.get("PROCNET_CONFIG") or None,
            secret=env.get("PROCNET_SECRET") or None,
            allow=[a.strip() for a in (env.get("PROCNET_ALLOW") or "").split(",") if a.strip()],
        )
