"""Crash-test writer: appends blocks to a store forever, reporting each durable height.

Usage: python -m tests.crash._writer STORE_DIR CONSORTIUM_SEED RNG_SEED

Prints "ready" once the store is open, then one line per block *after* `commit_block` returned
(so every printed height is durable by the store's contract). The parent kills it with SIGKILL.
"""

from __future__ import annotations

import random
import sys

from ledger import Store
from ledger._chain import ChainBuilder
from tests.unit.ledger.helpers import KVApp, kv_specs, make_consortium


def main() -> None:
    path, cseed, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    c = make_consortium(seed=cseed)
    rng = random.Random(seed)
    with Store.open(path, genesis=c.genesis) as store:
        b = ChainBuilder(store, c.genesis, KVApp(), c.nodes[:3])
        for k in c.orgs:  # resume each signer's nonce from the committed state
            b.nonces[k.public] = int(store.get(b"nonce/" + k.public) or b"0")
        out = sys.stdout
        out.write("ready\n")
        out.flush()
        while True:
            r = b.append_specs(kv_specs(rng, c, rng.randrange(1, 6)))
            out.write(f"{r.block.height}\n")
            out.flush()


if __name__ == "__main__":
    main()
