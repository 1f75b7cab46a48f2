"""The node runtime: configuration, mempool, executor, consensus driver, HTTP API, devnet.

I/O boundary: this package is where a node's disk (through `ledger.Store`), network (through
`p2p`), clock and HTTP server meet; `consensus` and `ledger` stay free of them.

`Node` is imported lazily: importing py-libp2p takes most of a second, and the reading commands
(`status`, `block show`, `devnet status`) only need `cli.node._devnet`.
"""

from __future__ import annotations

import typing

from cli.node._config import NodeConfig as NodeConfig
from cli.node._executor import Executor as Executor
from cli.node._mempool import Mempool as Mempool

if typing.TYPE_CHECKING:
    from cli.node._node import Node as Node

__all__ = [
    "Executor",
    "Mempool",
    "Node",
    "NodeConfig",
]


def __getattr__(name: str) -> typing.Any:
    if name == "Node":
        from cli.node._node import Node

        return Node
    raise AttributeError(f"module 'cli.node' has no attribute {name!r}")
