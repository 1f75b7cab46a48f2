from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cli.main import app
from ledger._genesis import Genesis


def _keys(runner: CliRunner, d: Path, name: str) -> None:
    (d / name).mkdir()
    for k in ("org", "node"):
        assert runner.invoke(app, ["keys", "new", "--out", str(d / name / f"{k}.key")]
                             ).exit_code == 0


def test_genesis_new_from_description(tmp_path: Path) -> None:
    runner = CliRunner()
    for name in ("alu", "frames"):
        _keys(runner, tmp_path, name)
    (tmp_path / "c.toml").write_text("""
chain_name = "t"
genesis_time_ms = 1
[[members]]
name = "alu"
org_key = "alu/org.key"
node_key = "alu/node.key"
addresses = ["/ip4/127.0.0.1/tcp/7000"]
roles = ["validator", "member"]
[[members]]
name = "frames"
org_key = "frames/org.key"
node_key = "frames/node.key"
addresses = []
roles = ["observer"]
""")
    res = runner.invoke(app, ["genesis", "new", "--from", str(tmp_path / "c.toml"), "--out",
                              str(tmp_path / "g.json"), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    g = Genesis.load(tmp_path / "g.json")
    assert doc["chain_id"] == g.chain_id.hex()
    assert [m.name for m in g.members] == ["alu", "frames"]
    assert len(g.validators) == 1
    # refuses to overwrite without --force
    res = runner.invoke(app, ["genesis", "new", "--from", str(tmp_path / "c.toml"), "--out",
                              str(tmp_path / "g.json")])
    assert res.exit_code == 2


def test_genesis_new_bad_description_is_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text('chain_name = "t"\n[[members]]\nname = "x"\n'
                                     'org_key = "missing.key"\n')
    res = CliRunner().invoke(app, ["genesis", "new", "--from", str(tmp_path / "c.toml"),
                                   "--out", str(tmp_path / "g.json")])
    assert res.exit_code == 2
    assert "Traceback" not in res.output
    assert not (tmp_path / "g.json").exists()


def test_completion_script() -> None:
    res = CliRunner().invoke(app, ["completion", "bash"])
    assert res.exit_code == 0
    assert "_PARTLEDGER_COMPLETE" in res.output
