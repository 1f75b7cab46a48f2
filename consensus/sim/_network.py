"""The simulated packet network: delays, loss, duplication, reordering, partitions, clogging.

Every decision comes from the run's one `random.Random`. Reordering is a consequence of random
per-packet delays. A partition blocks directed paths (asymmetric modes block one direction
only); clogging adds a large delay to every path touching one instance (FoundationDB's
swizzle-clog, simplified). `heal()` ends all of it for the liveness phase.
"""

from __future__ import annotations

import random

from consensus.sim._options import Options


class Network:
    def __init__(self, rng: random.Random, options: Options, instances: int,
                 twin_pairs: list[tuple[int, int]]) -> None:
        self._rng = rng
        self._o = options
        self._m = instances
        self._twins = twin_pairs
        self.loss = options.loss
        self.blocked: set[tuple[int, int]] = set()
        self.clogged: dict[int, int] = {}
        self.sent = 0
        self.dropped = 0
        self.duplicated = 0

    def delays(self, a: int, b: int) -> list[int]:
        """Arrival delays (ms) of one packet a -> b: none if lost, two if duplicated."""
        self.sent += 1
        if (a, b) in self.blocked or (self.loss and self._rng.random() < self.loss):
            self.dropped += 1
            return []
        out = [self._one(a, b)]
        if self._o.duplicate and self._rng.random() < self._o.duplicate:
            self.duplicated += 1
            out.append(self._one(a, b))
        return out

    def _one(self, a: int, b: int) -> int:
        d = self._o.delay_min_ms + int(self._rng.expovariate(1.0 / self._o.delay_mean_ms))
        return d + self.clogged.get(a, 0) + self.clogged.get(b, 0)

    def connected(self, a: int, b: int) -> bool:
        return (a, b) not in self.blocked and (b, a) not in self.blocked

    def change(self) -> str:
        """One nemesis step: a new partition or clog, or healing; returns what it did."""
        rng = self._rng
        self.blocked = set()
        self.clogged = {}
        if self._o.clogging and rng.random() < 0.3:
            victim = rng.randrange(self._m)
            self.clogged[victim] = rng.choice((200, 1_000, 3_000))
            return f"clog {victim}"
        mode = self._o.partition_mode
        if mode == "none" or rng.random() < 0.3 or self._m < 2:
            return "healed"
        side = [rng.random() < 0.5 for _ in range(self._m)]
        if mode == "isolate_single":
            victim = rng.randrange(self._m)
            side = [i == victim for i in range(self._m)]
        elif mode == "twins_split":
            # each twin on its own side, the others spread evenly: two "quorums" that
            # share only the twins' keys (the Twins paper's scenario)
            twinned = {i for pair in self._twins for i in pair}
            rest = [i for i in range(self._m) if i not in twinned]
            offset = rng.randrange(2)
            for k, i in enumerate(rest):
                side[i] = (k + offset) % 2 == 0
            for a, b in self._twins:
                side[a], side[b] = (True, False) if rng.random() < 0.5 else (False, True)
        if all(side) or not any(side):
            side[rng.randrange(self._m)] ^= True
        for a in range(self._m):
            for b in range(self._m):
                if side[a] and not side[b]:
                    self.blocked.add((a, b))
                    if mode != "asymmetric":
                        self.blocked.add((b, a))
        return f"{mode} {''.join('1' if s else '0' for s in side)}"

    def heal(self) -> None:
        self.blocked = set()
        self.clogged = {}
        self.loss = 0.0
