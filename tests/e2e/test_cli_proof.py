"""`partledger proof tx` / `proof verify` as a user runs them, on a generated chain."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import app
from ledger._home import Home
from ledger._store import Store


def _partledger(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("chain") / "home"
    r = _partledger("dev", "generate", "--out", str(out), "--blocks", "4", "--txs-per-block",
                    "9", "--json")
    assert r.returncode == 0, r.stderr
    return out


def _some_tx(home: Path) -> str:
    with Store.open(Home.at(home).ledger_dir, read_only=True) as s:
        block = s.block(3)
        assert block is not None
        return block.txs[5].tx_id.hex()


def test_proof_tx_and_verify_subprocess(chain: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    r = _partledger("proof", "tx", _some_tx(chain), "--home", str(chain), "--out", str(out),
                    "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["height"] == 3
    r = _partledger("proof", "verify", str(out), "--genesis", str(chain / "genesis.json"),
                    "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["ok"] is True and doc["height"] == 3


def test_proof_verify_any_changed_character_exit_1(chain: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    runner = CliRunner()
    res = runner.invoke(app, ["proof", "tx", _some_tx(chain), "--home", str(chain), "--out",
                              str(out)])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    genesis = str(chain / "genesis.json")
    rng = random.Random(1)
    content = [i for i, c in enumerate(text) if not c.isspace()]
    tampered_file = tmp_path / "t.json"
    for pos in rng.sample(content, 150):
        c = text[pos]
        repl = rng.choice([x for x in '0123456789abcdefxyz"{}:,' if x != c])
        tampered_file.write_text(text[:pos] + repl + text[pos + 1:])
        res = runner.invoke(app, ["proof", "verify", str(tampered_file), "--genesis", genesis])
        assert res.exit_code == 1, (pos, c, repl, res.output)


def test_proof_verify_wrong_genesis_fails(chain: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    r = _partledger("dev", "generate", "--out", str(other), "--blocks", "1", "--txs-per-block",
                    "1", "--seed", "99")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "p.json"
    runner = CliRunner()
    assert runner.invoke(app, ["proof", "tx", _some_tx(chain), "--home", str(chain), "--out",
                               str(out)]).exit_code == 0
    res = runner.invoke(app, ["proof", "verify", str(out), "--genesis",
                              str(other / "genesis.json"), "--json"])
    assert res.exit_code == 1
    assert json.loads(res.stdout.splitlines()[0])["ok"] is False
