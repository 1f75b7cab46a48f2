"""The node runtime: configuration, mempool, executor, consensus driver, HTTP API, devnet.

I/O boundary: this package is where a node's disk (through `ledger.Store`), network (through
`p2p`), clock and HTTP server meet; `consensus` and `ledger` stay free of them.
"""

from cli.node._config import NodeConfig as NodeConfig
from cli.node._executor import Executor as Executor
from cli.node._mempool import Mempool as Mempool
from cli.node._node import Node as Node

__all__ = [
    "Executor",
    "Mempool",
    "Node",
    "NodeConfig",
]
