"""Small fixed harness for unit tests of the core: n validators, instant FIFO delivery."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from consensus import (
    Action,
    Broadcast,
    Commit,
    Config,
    Core,
    Input,
    MessageReceived,
    Persist,
    ProposalValidated,
    ProposalValueReady,
    RequestProposalValue,
    ScheduleTimeout,
    Send,
    Start,
    ValidateProposal,
)
from ledger import SigningKey, encode, sha256

CHAIN = sha256(b"unit-test-chain")
_KEYS = [SigningKey(sha256(b"unit-key-%d" % i)) for i in range(10)]


def keys(n: int) -> list[SigningKey]:
    return _KEYS[:n]


def config(n: int, **kw: object) -> Config:
    return Config(chain=CHAIN, validators=tuple(k.public for k in keys(n)), **kw)  # type: ignore[arg-type]


def block(height: int, round_: int, tag: bytes = b"") -> bytes:
    return encode({"height": height, "round": round_, "tag": tag})


@dataclass
class Pair:
    """n cores wired together; `auto` answers value requests and validations at once."""

    n: int
    auto: bool = True
    cores: list[Core] = field(default_factory=list)
    queue: deque[tuple[int, Input]] = field(default_factory=deque)
    commits: dict[int, list[Commit]] = field(default_factory=dict)
    persisted: dict[int, list[Persist]] = field(default_factory=dict)
    timers: dict[int, ScheduleTimeout] = field(default_factory=dict)
    log: list[tuple[int, Action]] = field(default_factory=list)
    down: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        cfg = config(self.n)
        self.cores = [Core(cfg, k) for k in keys(self.n)]
        for i in range(self.n):
            self.commits[i] = []
            self.persisted[i] = []

    def index(self, public: bytes) -> int:
        return [k.public for k in keys(self.n)].index(public)

    def feed(self, i: int, inp: Input) -> list[Action]:
        actions = self.cores[i].step(inp)
        for a in actions:
            self.log.append((i, a))
            if isinstance(a, Broadcast):
                for j in range(self.n):
                    if j != i:
                        self.queue.append((j, MessageReceived(msg=a.msg)))
            elif isinstance(a, Send):
                self.queue.append((self.index(a.to), MessageReceived(msg=a.msg)))
            elif isinstance(a, Commit):
                self.commits[i].append(a)
            elif isinstance(a, Persist):
                self.persisted[i].append(a)
            elif isinstance(a, ScheduleTimeout):
                self.timers[i] = a
            elif isinstance(a, RequestProposalValue) and self.auto:
                b = block(a.height, a.round, b"%d" % i)
                self.queue.append((i, ProposalValueReady(height=a.height, round=a.round,
                                                         block_hash=sha256(b), block_bytes=b)))
            elif isinstance(a, ValidateProposal) and self.auto:
                self.queue.append((i, ProposalValidated(height=a.height, round=a.round,
                                                        block_hash=a.block_hash, ok=True)))
        return actions

    def start(self) -> None:
        for i in range(self.n):
            self.feed(i, Start())

    def run(self, limit: int = 100_000) -> None:
        while self.queue and limit:
            limit -= 1
            i, inp = self.queue.popleft()
            if i in self.down:
                continue
            self.feed(i, inp)
