"""The deterministic simulator (VOPR-like) that runs many real cores and tries to break them.

I/O boundary: none; its only source of variety is `random.Random(seed)`. `run_seed(seed, ...)`
runs one whole swarm-configured run and returns a `RunResult` whose `digest` identifies the
exact trace (the same seed reproduces it, in any process).
"""

from consensus.sim._checkers import Violation as Violation
from consensus.sim._cluster import Cluster as Cluster
from consensus.sim._cluster import RunResult as RunResult
from consensus.sim._cluster import run_seed as run_seed
from consensus.sim._cluster import sim_keys as sim_keys
from consensus.sim._options import Options as Options
from consensus.sim._options import swarm as swarm

__all__ = ["Cluster", "Options", "RunResult", "Violation", "run_seed", "sim_keys", "swarm"]
