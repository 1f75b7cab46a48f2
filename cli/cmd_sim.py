"""`partledger sim`: run the deterministic consensus simulator over many seeds.

Exit code 1 whenever any run has a violation — including runs with more than f byzantine
validators, where violations are expected (that is how the checker itself is exercised).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any

import click

from cli._output import EXIT_FAILURE, EXIT_USAGE, emit, fail

KINDS = ("agreement", "validity", "liveness", "crash", "accused_honest")


def _reproduce(nodes: int, byzantine: int, heights: int, seed: int) -> str:
    return (f"partledger sim --nodes {nodes} --byzantine {byzantine} --heights {heights} "
            f"--seed {seed}")


@click.command("sim")
@click.option("--nodes", default=4, show_default=True, type=click.IntRange(1, 31),
              help="validators per run")
@click.option("--byzantine", default=1, show_default=True, type=click.IntRange(0, 31),
              help="byzantine validators per run (more than f can break agreement)")
@click.option("--seeds", default=100, show_default=True, type=click.IntRange(1),
              help="number of seeds to run (start, start+1, ...)")
@click.option("--start", default=0, show_default=True, type=click.IntRange(0),
              help="first seed of the range")
@click.option("--seed", "one_seed", type=click.IntRange(0), default=None,
              help="run only this seed (reproduce a failure)")
@click.option("--heights", default=4, show_default=True, type=click.IntRange(1, 1000),
              help="heights the safety phase aims for before the network heals")
@click.option("--json", "json_mode", is_flag=True, help="print one JSON document")
def sim(nodes: int, byzantine: int, seeds: int, start: int, one_seed: int | None, heights: int,
        json_mode: bool) -> None:
    """run the consensus simulator: n real cores, a seeded network, faults, byzantine nodes.

    Each seed picks its own mix of delays, loss, duplication, partitions, crashes and
    byzantine behaviours; checkers look for agreement, validity and liveness violations.
    A failing seed is printed with the command that reproduces it exactly.

    \b
    example:
      partledger sim --nodes 4 --byzantine 1 --seeds 1000
      partledger sim --nodes 4 --byzantine 2 --seeds 200 --json   # 2 Twins > f: violations
      partledger sim --nodes 7 --byzantine 2 --seed 1234
    """
    if byzantine > nodes:
        fail(f"--byzantine {byzantine} exceeds --nodes {nodes}", code=EXIT_USAGE,
             json_mode=json_mode)
    from consensus.sim import run_seed

    seed_list = [one_seed] if one_seed is not None else list(range(start, start + seeds))
    f = (nodes - 1) // 3
    counts = dict.fromkeys(KINDS, 0)
    failing: list[int] = []
    heights_committed = 0
    runs = 0
    single: dict[str, Any] | None = None
    t0 = time.perf_counter()
    for seed in _progress(seed_list, json_mode):
        result = run_seed(seed, nodes=nodes, byzantine=byzantine, heights=heights)
        runs += 1
        heights_committed += result.min_height
        if one_seed is not None:
            single = {**result.to_json(), "options": result.options.to_json()}
        if result.violations:
            failing.append(seed)
            for v in result.violations:
                counts[v.kind] = counts.get(v.kind, 0) + 1
            first = result.violations[0]
            click.echo(f"SEED={seed} {first.kind} at height {first.height}: "
                       f"{first.detail.splitlines()[0]}", err=True)
            click.echo(f"reproduce with: {_reproduce(nodes, byzantine, heights, seed)}",
                       err=True)
    seconds = time.perf_counter() - t0
    total = sum(counts.values())
    data: dict[str, Any] = {
        "ok": total == 0, "nodes": nodes, "byzantine": byzantine, "f": f, "heights": heights,
        "runs": runs, "violations": total,
        **{f"{k}_violations": counts[k] for k in KINDS},
        "failing_seeds": failing, "heights_committed": heights_committed,
        "seconds": round(seconds, 3), "seeds_per_second": round(runs / seconds, 2) if seconds
        else None,
    }
    if single is not None:
        data["run"] = single
    emit(data, json_mode, _render)
    if total:
        sys.exit(EXIT_FAILURE)


def _render(d: dict[str, Any]) -> None:
    click.echo(f"runs {d['runs']} (n={d['nodes']}, byzantine={d['byzantine']}, f={d['f']}), "
               f"heights committed {d['heights_committed']}, {d['seeds_per_second']} seeds/s")
    kinds = ", ".join(f"{k} {d[k + '_violations']}" for k in KINDS)
    click.echo(f"violations {d['violations']} ({kinds})")
    if d["failing_seeds"]:
        shown = " ".join(str(s) for s in d["failing_seeds"][:20])
        click.echo(f"failing seeds: {shown}{' ...' if len(d['failing_seeds']) > 20 else ''}")


def _progress(seeds: list[int], json_mode: bool) -> Iterator[int]:
    if json_mode or len(seeds) < 2 or not sys.stderr.isatty():
        yield from seeds
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress("sim", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=Console(file=sys.stderr), transient=True) as prog:
        task = prog.add_task("sim", total=len(seeds))
        for seed in seeds:
            yield seed
            prog.advance(task)
