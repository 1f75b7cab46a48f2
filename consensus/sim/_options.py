"""Swarm testing: every knob of a run is drawn from the run's seed (TigerBeetle `options_swarm`).

Different seeds enable different subsets of faults at different intensities, so that rare
combinations are explored instead of one average mix.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, replace
from typing import Any

PARTITION_MODES = ("none", "uniform", "isolate_single", "asymmetric", "twins_split")
BEHAVIOURS = ("silent", "equivocate_proposal", "double_vote", "twins", "invalid_block",
              "garbage")
# drawn after every other option, so that adding one leaves the runs of older seeds unchanged
LATE_BEHAVIOURS = ("cherry_pick",)
ALL_BEHAVIOURS = BEHAVIOURS + LATE_BEHAVIOURS


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """Everything that varies between runs; derived only from the seed and the CLI counts."""

    seed: int
    nodes: int
    byzantine: tuple[int, ...]  # validator indices that are byzantine
    behaviours: tuple[tuple[str, ...], ...]  # per byzantine index, its behaviours
    heights: int  # heights the safety phase aims for before the network is healed
    safety_ms: int  # longest safety phase (simulated)
    liveness_heights: int  # new heights every honest node must commit after healing
    liveness_ms: int  # bound for that
    timeout_base_ms: int
    timeout_max_exponent: int
    delay_min_ms: int
    delay_mean_ms: int
    loss: float
    duplicate: float
    partition_mode: str
    partition_stable_ms: int  # mean time between network changes
    clogging: bool
    crash_mean_ms: int  # mean time between crashes of honest nodes (0: none)
    down_mean_ms: int
    crash_mid_step: bool  # a crash may cut a step's action list after any prefix
    app_delay_max_ms: int
    clock_rate_pct: tuple[int, ...] = ()  # per instance: timers run at this % of real time

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def instances(self) -> int:
        return self.nodes + sum(1 for b in self.behaviours if "twins" in b)


def swarm(seed: int, *, nodes: int, byzantine: int, heights: int) -> Options:
    """Draw a run's options from `seed` (same seed, same options, on every machine)."""
    rng = random.Random(seed)
    byz = tuple(sorted(rng.sample(range(nodes), min(byzantine, nodes))))
    behaviours: list[tuple[str, ...]] = []
    beyond_f = byzantine > (nodes - 1) // 3
    all_twins = beyond_f and rng.random() < 0.8
    for _ in byz:
        if all_twins:
            behaviours.append(("twins", *[b for b in ("equivocate_proposal", "double_vote")
                                          if rng.random() < 0.3]))
            continue
        if rng.random() < 0.15:
            behaviours.append(("silent",))
            continue
        active = [b for b in BEHAVIOURS[1:] if rng.random() < 0.5]
        if beyond_f and "twins" not in active and rng.random() < 0.7:
            active.append("twins")  # more than f faulty: make agreement-breaking mixes likely
        behaviours.append(tuple(active) or (rng.choice(BEHAVIOURS[1:]),))
    modes = list(PARTITION_MODES if any("twins" in b for b in behaviours)
                 else PARTITION_MODES[:-1])
    base = rng.choice((50, 100, 200, 500))
    delay_mean = rng.choice((1, 5, 20, 50, 150))
    options = Options(
        seed=seed, nodes=nodes, byzantine=byz, behaviours=tuple(behaviours),
        heights=heights,
        safety_ms=rng.randint(2_000, 30_000),
        liveness_heights=2,
        liveness_ms=600_000,
        timeout_base_ms=base,
        timeout_max_exponent=rng.choice((8, 10, 12)),
        delay_min_ms=rng.randint(0, 10),
        delay_mean_ms=delay_mean,
        loss=rng.choice((0.0, 0.0, 0.01, 0.05, 0.2)),
        duplicate=rng.choice((0.0, 0.0, 0.02, 0.1)),
        partition_mode=("twins_split" if all_twins and rng.random() < 0.8
                        else rng.choice(modes)),
        partition_stable_ms=rng.choice((200, 1_000, 4_000)),
        clogging=rng.random() < 0.3,
        crash_mean_ms=rng.choice((0, 300, 1_500, 6_000)),
        down_mean_ms=rng.choice((100, 1_000, 5_000)),
        crash_mid_step=rng.random() < 0.5,
        app_delay_max_ms=rng.choice((0, 2, 30)),
    )
    # cherry_pick: as proposer after a round change, justify with the quorum of ROUND-CHANGEs
    # that hides the highest prepared value it can (quorum intersection must defeat this)
    late = [rng.random() < 0.4 for _ in byz]
    options = replace(options, behaviours=tuple(
        (*b, "cherry_pick") if pick and b != ("silent",) else b
        for b, pick in zip(options.behaviours, late, strict=True)))
    # clock skew (TigerBeetle time offsets): each instance's timers run fast or slow
    if rng.random() < 0.5:
        options = replace(options, clock_rate_pct=tuple(
            rng.choice((50, 80, 100, 125, 200)) for _ in range(options.instances)))
    return options
