"""Native path against its baselines, measured in one run on the same inputs.

    python bench/native.py            # full run, a table on stdout (about a minute)
    python bench/native.py --json     # the table on stderr, one JSON object on stdout
    python bench/native.py --smoke    # tiny sizes, for CI: checks that it runs, not speed
    python bench/native.py --clock thread   # on a busy machine: 1-thread figures in CPU time

Figures:
- Ed25519 verification: PyNaCl one by one (`crypto_sign_open`, libsodium, one thread) against
  `ledger._native.verify_batch` on 1 thread and on 2 threads, for batches of 1, 16, 256, 4096
  200-byte messages signed by 64 keys in turn (a consortium has few signers; the extension
  decodes each distinct key once per work unit and caches recent keys), and once more for 256
  signatures by 256 keys it has never seen (row `256d`, JSON `verify_1core_distinct_keys`);
- SHA-256 of 100,000 200-byte items: `hashlib` in a loop against `sha256_batch`;
- Merkle root of 100,000 leaves: the pure-Python twin against the extension.
Each figure is the median of `--repeat` rounds (default 5); the rounds interleave the
contenders so that drifting machine load hits them alike. The JSON object has `verify_1core`
(native 1-thread rate / PyNaCl rate, batches of 256), `verify_2core` (native 2 threads /
PyNaCl 1 thread) and `merkle_100k` (pure-Python time / native time), plus every figure.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nacl.signing
from nacl.bindings import crypto_sign_open

from ledger import _native, _native_py

KEYS = 64
MESSAGE_BYTES = 200


# `--clock thread` times single-threaded work with this thread's CPU time, which a busy machine
# does not inflate (time spent descheduled is not counted); multi-threaded work is always timed
# by the wall clock, since what it measures is how much the other cores help.
_CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "thread": time.thread_time}
_clock = time.perf_counter


def _seconds(fn: Callable[[], object], min_seconds: float,
             clock: Callable[[], float] | None = None) -> tuple[float, int]:
    """Run `fn` until `min_seconds` have passed; (seconds per call, calls)."""
    clock = clock or _clock
    calls = 0
    start = clock()
    while True:
        fn()
        calls += 1
        elapsed = clock() - start
        if elapsed >= min_seconds:
            return elapsed / calls, calls


def _inputs(n: int, n_keys: int, tag: bytes = b"") -> tuple[list[bytes], list[bytes], list[bytes]]:
    keys = [nacl.signing.SigningKey(hashlib.sha256(b"bench key %s%d" % (tag, i)).digest())
            for i in range(n_keys)]
    msgs = [hashlib.sha512(b"msg %s%d" % (tag, i)).digest() * 4 for i in range(n)]
    msgs = [m[:MESSAGE_BYTES] for m in msgs]
    sigs = [bytes(keys[i % n_keys].sign(m).signature) for i, m in enumerate(msgs)]
    pks = [bytes(keys[i % n_keys].verify_key) for i in range(n)]
    return msgs, sigs, pks


def _pynacl_loop(msgs: list[bytes], sigs: list[bytes], pks: list[bytes]) -> None:
    for m, s, k in zip(msgs, sigs, pks, strict=True):
        crypto_sign_open(s + m, k)


def run(smoke: bool, repeat: int, clock: str = "wall") -> dict[str, object]:
    global _clock
    _clock = _CLOCKS[clock]
    batches = (1, 16, 256) if smoke else (1, 16, 256, 4096)
    hash_items = 1_000 if smoke else 100_000
    min_seconds = 0.01 if smoke else 0.25
    msgs, sigs, pks = _inputs(max(batches), KEYS)
    assert _native.verify_batch(msgs, sigs, pks) == [True] * len(msgs)
    # 256d: every call takes the next 256 of `n_distinct` keys, so no key comes back before the
    # extension's key cache (256 slots) has forgotten it: the figure for signers never seen before
    n_distinct = 1024 if smoke else 4096
    dm, ds, dk = _inputs(n_distinct, n_distinct, b"distinct ")
    distinct = [(dm[i:i + 256], ds[i:i + 256], dk[i:i + 256]) for i in range(0, n_distinct, 256)]
    assert all(_native.verify_batch(*d) == [True] * 256 for d in distinct)
    items = [hashlib.sha512(b"item %d" % i).digest() * 4 for i in range(hash_items)]
    items = [d[:200] for d in items]
    assert _native.sha256_batch(items) == _native_py.sha256_batch(items)
    assert _native.merkle_root(items) == _native_py.merkle_root(items)

    samples: dict[str, list[float]] = {}

    def record(name: str, value: float) -> None:
        samples.setdefault(name, []).append(value)

    Batch = tuple[list[bytes], list[bytes], list[bytes]]
    cases: list[tuple[str, int, list[Batch]]] = [
        (str(b), b, [(msgs[:b], sigs[:b], pks[:b])]) for b in batches]
    cases.append(("256d", 256, distinct))
    for _ in range(repeat):
        for label, b, inputs in cases:
            nxt = itertools.cycle(inputs).__next__
            per_call, _ = _seconds(lambda nxt=nxt: _pynacl_loop(*nxt()), min_seconds)
            record(f"verify_pynacl_b{label}", b / per_call)
            for threads in (1, 2):
                _native.set_threads(threads)
                per_call, _ = _seconds(lambda nxt=nxt: _native.verify_batch(*nxt()),
                                       min_seconds, None if threads == 1 else time.perf_counter)
                record(f"verify_native{threads}t_b{label}", b / per_call)
        _native.set_threads(0)
        per_call, _ = _seconds(lambda: [hashlib.sha256(d).digest() for d in items], min_seconds)
        record("sha256_hashlib_s", per_call)
        for threads in (1, 0):
            _native.set_threads(threads)
            timer = None if threads == 1 else time.perf_counter
            per_call, _ = _seconds(lambda: _native.sha256_batch(items), min_seconds, timer)
            record(f"sha256_native{'1t' if threads else 'all'}_s", per_call)
            per_call, _ = _seconds(lambda: _native.merkle_root(items), min_seconds, timer)
            record(f"merkle_native{'1t' if threads else 'all'}_s", per_call)
        _native.set_threads(0)
        per_call, _ = _seconds(lambda: _native_py.merkle_root(items), min_seconds)
        record("merkle_python_s", per_call)

    med = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "verify_1core": med["verify_native1t_b256"] / med["verify_pynacl_b256"],
        "verify_2core": med["verify_native2t_b256"] / med["verify_pynacl_b256"],
        "verify_1core_distinct_keys": med["verify_native1t_b256d"] / med["verify_pynacl_b256d"],
        "verify_2core_distinct_keys": med["verify_native2t_b256d"] / med["verify_pynacl_b256d"],
        "merkle_100k": med["merkle_python_s"] / med["merkle_nativeall_s"],
        "merkle_100k_1thread": med["merkle_python_s"] / med["merkle_native1t_s"],
        "sha256_100k": med["sha256_hashlib_s"] / med["sha256_nativeall_s"],
        "sha256_100k_1thread": med["sha256_hashlib_s"] / med["sha256_native1t_s"],
        "figures": med,
        "batches": list(batches),
        "hash_items": hash_items,
        "repeat": repeat,
        "clock": clock,
        "load_average": list(os.getloadavg()),
        "smoke": smoke,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def table(result: dict[str, object]) -> str:
    fig = result["figures"]
    assert isinstance(fig, dict)
    batches = result["batches"]
    assert isinstance(batches, list)
    n = result["hash_items"]
    load = result["load_average"]
    assert isinstance(load, list)
    lines = [
        f"clock: {result['clock']}; load average at the end: {load[0]:.2f}",
        f"median of {result['repeat']} rounds; rates in verifications/s "
        f"(ratio = native / PyNaCl one by one, 1 thread)",
        f"{'batch':>6} {'PyNaCl':>10} {'native 1t':>10} {'ratio':>6} {'native 2t':>10} {'ratio':>6}",
    ]
    for b in [*batches, "256d"]:
        py, n1, n2 = (fig[f"verify_{w}_b{b}"] for w in ("pynacl", "native1t", "native2t"))
        lines.append(f"{b!s:>6} {py:>10,.0f} {n1:>10,.0f} {n1 / py:>6.2f} {n2:>10,.0f} "
                     f"{n2 / py:>6.2f}")
    lines += [
        "",
        f"SHA-256 of {n:,} 200-byte items: hashlib {fig['sha256_hashlib_s'] * 1e3:.2f} ms, "
        f"native 1t {fig['sha256_native1t_s'] * 1e3:.2f} ms "
        f"(x{fig['sha256_hashlib_s'] / fig['sha256_native1t_s']:.1f}), "
        f"all cores {fig['sha256_nativeall_s'] * 1e3:.2f} ms "
        f"(x{fig['sha256_hashlib_s'] / fig['sha256_nativeall_s']:.1f})",
        f"Merkle root of {n:,} leaves: pure Python {fig['merkle_python_s'] * 1e3:.2f} ms, "
        f"native 1t {fig['merkle_native1t_s'] * 1e3:.2f} ms "
        f"(x{fig['merkle_python_s'] / fig['merkle_native1t_s']:.1f}), "
        f"all cores {fig['merkle_nativeall_s'] * 1e3:.2f} ms "
        f"(x{fig['merkle_python_s'] / fig['merkle_nativeall_s']:.1f})",
        "",
        f"verify_1core = {result['verify_1core']:.2f} (target >= 2.0)   "
        f"verify_2core = {result['verify_2core']:.2f} (target >= 3.5)   "
        f"merkle_100k = {result['merkle_100k']:.1f} (target >= 10)",
        "(batches of 256 by 64 keys; 256d: 256 keys never seen before: "
        f"{result['verify_1core_distinct_keys']:.2f} on 1 thread, "
        f"{result['verify_2core_distinct_keys']:.2f} on 2)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    parser.add_argument("--repeat", type=int, default=None, help="rounds (default 5; smoke 1)")
    parser.add_argument("--clock", choices=sorted(_CLOCKS), default="wall",
                        help="time single-threaded work by wall clock or by this thread's CPU "
                             "time (for a busy machine); multi-threaded work is always wall")
    args = parser.parse_args(argv)
    repeat = args.repeat or (1 if args.smoke else 5)
    if repeat < 1:
        parser.error("--repeat must be >= 1")
    result = run(args.smoke, repeat, args.clock)
    if args.json:
        print(table(result), file=sys.stderr)
        print(json.dumps(result, sort_keys=True))
    else:
        print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
