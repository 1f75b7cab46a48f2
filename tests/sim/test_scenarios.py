"""Scenario tests: the simulator with chosen options instead of swarm-drawn ones."""

from __future__ import annotations

import dataclasses
import json

from click.testing import CliRunner

from cli.main import app
from consensus.sim import Cluster, Options, swarm


def _options(seed: int, **kw: object) -> Options:
    base = swarm(seed, nodes=kw.pop("nodes", 4), byzantine=0, heights=4)  # type: ignore[arg-type]
    quiet = dict(loss=0.0, duplicate=0.0, partition_mode="none", clogging=False,
                 crash_mean_ms=0, crash_mid_step=False)
    return dataclasses.replace(base, **{**quiet, **kw})  # type: ignore[arg-type]


def test_scenario_honest_nodes_crashing_mid_step_never_equivocate_or_fork() -> None:
    crashes = 0
    for seed in range(25):
        o = _options(seed, crash_mean_ms=150, down_mean_ms=300, crash_mid_step=True,
                     safety_ms=8_000, heights=12, loss=0.05)
        r = Cluster(o).run()
        assert r.ok, (seed, r.violations)
        assert r.min_height >= 2
        crashes += r.crashes
    assert crashes >= 50


def test_scenario_silent_proposer_is_skipped_by_round_change() -> None:
    for seed in range(10):
        o = _options(seed, byzantine=(1,), behaviours=(("silent",),))
        r = Cluster(o).run()
        assert r.ok, (seed, r.violations)
        assert r.max_round >= 1 and r.min_height >= 3


def test_scenario_equivocating_proposer_and_double_voter_are_caught_not_obeyed() -> None:
    evidence = 0
    for seed in range(20):
        o = _options(seed, nodes=7, byzantine=(0, 4),
                     behaviours=(("equivocate_proposal",), ("double_vote", "garbage")))
        r = Cluster(o).run()
        assert r.ok, (seed, r.violations)
        evidence += r.evidence
    assert evidence > 0


def test_scenario_asymmetric_partition_heals_and_everyone_catches_up() -> None:
    changes = 0
    for seed in range(15):
        o = _options(seed, partition_mode="asymmetric", partition_stable_ms=300,
                     safety_ms=6_000, heights=10, delay_mean_ms=50)
        r = Cluster(o).run()
        assert r.ok, (seed, r.violations)
        changes += r.net_changes
    assert changes >= 15


def test_cli_sim_json_and_reproduction() -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["sim", "--nodes", "4", "--byzantine", "1", "--seeds", "3",
                              "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert (d["runs"], d["violations"], d["agreement_violations"], d["failing_seeds"]) == (
        3, 0, 0, [])
    one = [json.loads(runner.invoke(app, ["sim", "--seed", "2", "--json"]).stdout)["run"]
           for _ in range(2)]
    assert one[0]["digest"] == one[1]["digest"]


def test_cli_sim_reports_failing_seeds_and_exits_1() -> None:
    res = CliRunner().invoke(app, ["sim", "--nodes", "4", "--byzantine", "2", "--seeds", "40",
                                   "--json"])
    assert res.exit_code == 1
    d = json.loads(res.stdout)
    assert d["agreement_violations"] >= 1 and d["failing_seeds"]
    assert f"SEED={d['failing_seeds'][0]} " in res.stderr
    assert "reproduce with: partledger sim" in res.stderr


def test_cli_sim_usage_error() -> None:
    res = CliRunner().invoke(app, ["sim", "--nodes", "3", "--byzantine", "4"])
    assert res.exit_code == 2


def test_scenario_one_twin_among_four_cannot_break_agreement() -> None:
    evidence = 0
    for seed in range(20):
        o = _options(seed, byzantine=(2,), behaviours=(("twins",),),
                     partition_mode="twins_split", partition_stable_ms=400, safety_ms=5_000,
                     heights=8)
        r = Cluster(o).run()
        assert r.ok, (seed, r.violations)
        evidence += r.evidence
    assert evidence > 0  # the twins' conflicting votes are seen and reported
