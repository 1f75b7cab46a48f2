"""`make fuzz`: run every fuzz target under atheris (coverage-guided) for a fixed budget.

    python -m tests.fuzz.run [--seconds 60] [--target NAME ...]

Each target runs in its own process with a corpus seeded from its valid examples; a target
fails when atheris finds an input that raises anything but a `PartledgerError`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile


def _child(name: str, seconds: int, corpus: str) -> None:
    import atheris

    with atheris.instrument_imports():
        from tests.fuzz.targets import TARGETS
    from ledger.errors import PartledgerError

    target = TARGETS[name]

    def one(data: bytes) -> None:
        try:
            target.run(data)
        except PartledgerError:
            pass

    atheris.Setup([sys.argv[0], f"-max_total_time={seconds}", "-rss_limit_mb=2048",
                   "-timeout=10", corpus], one)
    atheris.Fuzz()


def main() -> int:
    ap = argparse.ArgumentParser(description="run the fuzz targets under atheris")
    ap.add_argument("--seconds", type=int, default=60, help="budget per target")
    ap.add_argument("--target", action="append", help="only these targets")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--corpus", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        _child(a.child, a.seconds, a.corpus)
        return 0
    from tests.fuzz.targets import TARGETS

    failed = []
    for name in a.target or sorted(TARGETS):
        with tempfile.TemporaryDirectory(prefix=f"fuzz-{name}-") as corpus:
            for i, seed in enumerate(TARGETS[name].seeds()):
                with open(os.path.join(corpus, f"seed{i}"), "wb") as f:
                    f.write(seed)
            print(f"fuzz {name}: {a.seconds} s", flush=True)
            rc = subprocess.run([sys.executable, "-m", "tests.fuzz.run", "--child", name,
                                 "--seconds", str(a.seconds), "--corpus", corpus],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if rc.returncode != 0:
                failed.append(name)
                print(rc.stderr[-4000:], file=sys.stderr)
    print(f"{len(failed)} failed: {failed}" if failed else "all fuzz targets clean")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
