# Hand-written stub of the Rust extension (native/py/src/lib.rs), checked by mypy.stubtest in
# `make lint`. The pure-Python twin ledger/_native_py.py has the same signatures.
from collections.abc import Callable, Iterable, Sequence
from typing import Self, final

__all__ = [
    "EventExecutor",
    "KeyFilter",
    "canonical_check",
    "canonical_encode",
    "consistency_proof",
    "get_threads",
    "inclusion_proof",
    "merkle_root",
    "reset_after_fork",
    "set_threads",
    "sha256_batch",
    "state_batch",
    "state_root",
    "tx_fields",
    "value_refs",
    "verify",
    "verify_batch",
]


def sha256_batch(items: Sequence[bytes]) -> list[bytes]: ...
def merkle_root(leaves: Sequence[bytes]) -> bytes: ...
def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]: ...
def consistency_proof(old_size: int, leaves: Sequence[bytes]) -> list[bytes]: ...
def verify(message: bytes, signature: bytes, public_key: bytes) -> bool: ...
def verify_batch(
    messages: Sequence[bytes], signatures: Sequence[bytes], public_keys: Sequence[bytes]
) -> list[bool]: ...
def set_threads(n: int) -> None: ...
def get_threads() -> int: ...
def reset_after_fork() -> None: ...
def canonical_check(data: bytes) -> bool: ...
def canonical_encode(value: object) -> bytes | None: ...
def state_root(domain: bytes, prev_root: bytes, writes: object) -> bytes | None: ...
def state_batch(
    prefix: bytes, writes: object, max_key: int
) -> tuple[list[bytes], list[bytes], list[bytes]] | None: ...
def value_refs(
    values: list[bytes], key_head: bytes, ref_head: bytes, min_bytes: int, inline: list[int]
) -> tuple[list[bytes], list[bytes], list[bytes]] | None: ...
def tx_fields(data: bytes) -> tuple[bytes, str, bytes, bytes, int, bytes, bytes] | None: ...


@final
class KeyFilter:
    def __new__(cls, capacity: int = ...) -> Self: ...
    def add(self, key: object) -> None: ...
    def update(self, keys: Iterable[object]) -> None: ...
    def __contains__(self, key: object, /) -> bool: ...
    def held(self, keys: list[bytes]) -> list[int]: ...
    @property
    def count(self) -> int: ...
    @property
    def nbytes(self) -> int: ...
    @property
    def parts(self) -> int: ...


@final
class EventExecutor:
    def __new__(
        cls,
        *,
        biz_steps: Sequence[str],
        dispositions: Sequence[str],
        cbv_prefixes: Sequence[str],
        write_roles: Sequence[str],
        cap_events: int,
        index: bool,
    ) -> Self: ...
    def execute(
        self,
        read: Callable[[bytes], bytes | None],
        chain: bytes,
        height: int,
        time_ms: int,
        txs: Sequence[bytes],
        tx_ids: Sequence[bytes],
        absent: KeyFilter | None = None,
        absent_prefix: bytes | None = None,
    ) -> dict[bytes, bytes] | None: ...
