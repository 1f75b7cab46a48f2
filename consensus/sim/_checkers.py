"""Checkers that judge every run: agreement, validity, liveness, and honest-never-accused.

They see every commit of every instance as it happens (TigerBeetle `state_checker`): the first
honest commit of a height becomes canonical, any other honest commit must match it.
"""

from __future__ import annotations

from dataclasses import dataclass

from consensus.sim._app import validate_block
from ledger import Seal, sha256, verify_seal
from ledger.errors import VerificationError

AGREEMENT = "agreement"
VALIDITY = "validity"
LIVENESS = "liveness"
CRASH = "crash"
ACCUSED_HONEST = "accused_honest"


@dataclass(frozen=True, slots=True, kw_only=True)
class Violation:
    kind: str
    height: int
    detail: str


class Checker:
    def __init__(self, *, chain: bytes, validators: tuple[bytes, ...],
                 honest_validators: frozenset[int]) -> None:
        self._chain = chain
        self._validators = validators
        self._honest = honest_validators
        self.canonical: dict[int, tuple[bytes, int]] = {}  # height -> (hash, first instance)
        self.created: dict[bytes, int] = {}  # block hash -> instance that made it
        self.violations: list[Violation] = []
        self._seals_ok: dict[bytes, bool] = {}
        self.evidence = 0

    def block_created(self, block_hash: bytes, instance: int) -> None:
        self.created.setdefault(block_hash, instance)

    def commit(self, *, instance: int, honest: bool, height: int, block_hash: bytes,
               block: bytes, seal: Seal, via: str) -> None:
        if not honest:
            return
        first = self.canonical.get(height)
        if first is None:
            self.canonical[height] = (block_hash, instance)
        elif first[0] != block_hash:
            self.violations.append(Violation(
                kind=AGREEMENT, height=height,
                detail=f"instance {instance} committed {block_hash.hex()[:12]} ({via}) but "
                       f"instance {first[1]} committed {first[0].hex()[:12]}"))
        problems = []
        if sha256(block) != block_hash:
            problems.append("bytes do not hash to the block hash")
        if block_hash not in self.created:
            problems.append("no node ever proposed this block")
        if not validate_block(block, height):
            problems.append("the application rejects this block")
        key = sha256(seal.encode() + block_hash)
        ok = self._seals_ok.get(key)
        if ok is None:
            try:
                verify_seal(seal, chain=self._chain, block_hash=block_hash, height=height,
                            validators=self._validators)
                ok = True
            except VerificationError:
                ok = False
            self._seals_ok[key] = ok
        if not ok:
            problems.append("its seal does not verify")
        for p in problems:
            self.violations.append(Violation(kind=VALIDITY, height=height,
                                             detail=f"instance {instance} ({via}): {p}"))

    def accused(self, *, validator: int, height: int, reporter: int) -> None:
        self.evidence += 1
        if validator in self._honest:
            self.violations.append(Violation(
                kind=ACCUSED_HONEST, height=height,
                detail=f"instance {reporter} holds equivocation evidence against honest "
                       f"validator {validator}"))

    def fail(self, kind: str, height: int, detail: str) -> None:
        self.violations.append(Violation(kind=kind, height=height, detail=detail))
