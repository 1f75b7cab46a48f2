"""`make fuzz`: run every fuzz target under atheris (coverage-guided) for a fixed budget.

    python -m tests.fuzz.run [--seconds 60] [--target NAME ...] [--jobs 2]
    python -m tests.fuzz.run --runs 2000 --seed 1     # reproducible (the test suite's run)

Set FUZZ_KEEP=DIR to keep the corpora and any crash/timeout inputs of a failing run.

Each target runs in its own process with a corpus seeded from its valid examples; a target
fails when atheris finds an input that raises anything but a `PartledgerError`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time


def _budget(seconds: int, runs: int | None, seed: int | None) -> list[str]:
    """libFuzzer flags: a time budget explores (`make fuzz`); a fixed seed and number of runs
    repeat the same inputs every time, so the test suite cannot turn red by luck."""
    flags = [f"-max_total_time={seconds}"] if runs is None else [f"-runs={runs}"]
    return flags + ([] if seed is None else [f"-seed={seed}"])


def _child(name: str, budget: list[str], corpus: str) -> None:
    import atheris

    with atheris.instrument_imports():
        from tests.fuzz.targets import TARGETS
    from ledger.errors import PartledgerError

    target = TARGETS[name]
    for seed in target.seeds():  # warm up: lazy imports and fixtures (a fuzz node) are built
        target.run(seed)        # here, not inside the first input's time limit

    def one(data: bytes) -> None:
        try:
            target.run(data)
        except PartledgerError:
            pass

    artifacts = os.path.join(os.path.dirname(corpus), "")  # crash/timeout inputs land there
    atheris.Setup([sys.argv[0], *budget, "-rss_limit_mb=2048",
                   "-timeout=10", f"-artifact_prefix={artifacts}", corpus], one)
    atheris.Fuzz()


def main() -> int:
    ap = argparse.ArgumentParser(description="run the fuzz targets under atheris")
    ap.add_argument("--seconds", type=int, default=60, help="budget per target")
    ap.add_argument("--target", action="append", help="only these targets")
    ap.add_argument("--runs", type=int, help="inputs per target instead of a time budget")
    ap.add_argument("--seed", type=int, help="libFuzzer's random seed (default: random)")
    ap.add_argument("--jobs", type=int, default=2, help="targets fuzzed at the same time")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--corpus", help=argparse.SUPPRESS)
    a = ap.parse_args()
    budget = _budget(a.seconds, a.runs, a.seed)
    if a.child:
        _child(a.child, budget, a.corpus)
        return 0
    from tests.fuzz.targets import TARGETS

    names = a.target or sorted(TARGETS)
    failed = []
    with tempfile.TemporaryDirectory(prefix="fuzz-") as work:
        running: list[tuple[str, subprocess.Popen[bytes]]] = []

        def reap(block: bool) -> None:
            for item in list(running):
                name, proc = item
                if not block and proc.poll() is None:
                    continue
                proc.wait()
                running.remove(item)
                if proc.returncode != 0:
                    failed.append(name)
                    with open(os.path.join(work, name, "log"), errors="replace") as log:
                        err = log.read()
                    print(f"fuzz {name}: FAILED\n{err[-4000:]}", file=sys.stderr)
                    for f in os.listdir(os.path.join(work, name)):
                        if f.startswith(("crash-", "timeout-", "oom-")):
                            print(f"  input: {os.path.join(work, name, f)}", file=sys.stderr)

        for name in names:
            corpus = os.path.join(work, name, "corpus")
            os.makedirs(corpus)
            for i, seed in enumerate(TARGETS[name].seeds()):
                with open(os.path.join(corpus, f"seed{i}"), "wb") as f:
                    f.write(seed)
            while len(running) >= max(1, a.jobs):
                reap(block=False)
                time.sleep(0.1)
            print(f"fuzz {name}: {' '.join(budget)}", flush=True)
            # libFuzzer logs every new input to stderr: into a file, since a pipe nobody reads
            # until the child exits fills up and blocks it. TMPDIR: the child's own temporary
            # files (a fuzz node's home) go with the work directory, as the child never gets
            # to clean up (libFuzzer ends the process).
            log_file = open(os.path.join(work, name, "log"), "wb")  # noqa: SIM115
            running.append((name, subprocess.Popen(
                [sys.executable, "-m", "tests.fuzz.run", "--child", name, "--seconds",
                 str(a.seconds), "--corpus", corpus]
                + (["--runs", str(a.runs)] if a.runs is not None else [])
                + (["--seed", str(a.seed)] if a.seed is not None else []),
                stdout=subprocess.DEVNULL, stderr=log_file,
                env={**os.environ, "TMPDIR": os.path.join(work, name)})))
            log_file.close()  # the child holds its own descriptor
        while running:
            reap(block=True)
        if failed and os.environ.get("FUZZ_KEEP"):
            shutil.copytree(work, os.environ["FUZZ_KEEP"], dirs_exist_ok=True)
    print(f"{len(failed)} failed: {sorted(failed)}" if failed else "all fuzz targets clean")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
