"""`partledger keys|dev|audit`: one JSON document with --json, agreed exit codes, no tracebacks."""

from __future__ import annotations

import json
import os
import random
import stat
from pathlib import Path
from typing import Any

import pytest

from cli.main import main
from ledger import Store


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def one_json(out: str) -> Any:
    return json.loads(out)  # raises unless stdout is exactly one JSON document


def test_keys_new_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "org.key"
    code, out, _ = run(["keys", "new", "--out", str(p), "--json"], capsys)
    assert code == 0
    doc = one_json(out)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    code, out, _ = run(["keys", "show", str(p), "--json"], capsys)
    assert code == 0 and one_json(out)["public_key"] == doc["public_key"]
    # refuses to overwrite
    code, out, err = run(["keys", "new", "--out", str(p), "--json"], capsys)
    assert code == 2 and one_json(out)["code"] == "key_file_exists" and "exists" in err
    # encrypted
    monkeypatch.setenv("PL_PASS", "correct horse")
    e = tmp_path / "enc.key"
    code, out, _ = run(["keys", "new", "--out", str(e), "--passphrase-env", "PL_PASS", "--json"],
                       capsys)
    assert code == 0 and one_json(out)["encrypted"] is True
    code, out, _ = run(["keys", "show", str(e), "--json"], capsys)
    assert code == 0 and one_json(out)["secret_checked"] is False
    code, out, _ = run(["keys", "show", str(e), "--passphrase-env", "PL_PASS", "--json"], capsys)
    assert code == 0 and one_json(out)["secret_checked"] is True
    monkeypatch.setenv("PL_PASS", "wrong")
    code, out, err = run(["keys", "show", str(e), "--passphrase-env", "PL_PASS", "--json"],
                         capsys)
    assert code == 2 and one_json(out)["code"] == "passphrase_wrong"
    assert err.startswith("error: ")


def test_dev_generate_replay_export_roundtrip(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    code, out, _ = run(["dev", "generate", "--out", str(home), "--blocks", "5",
                        "--txs-per-block", "8", "--seed", "3", "--json"], capsys)
    assert code == 0
    gen = one_json(out)
    assert gen["height"] == 5 and gen["txs"] > 0
    assert (home / "genesis.json").is_file() and (home / "keys" / "node.key").is_file()
    for m in gen["members"]:
        assert (home / "consortium" / m / "org.key").is_file()
    assert stat.S_IMODE(os.stat(home / "keys").st_mode) == 0o700
    # the home's own keys are member 0's
    genesis = json.loads((home / "genesis.json").read_text())
    code, out, _ = run(["keys", "show", str(home / "keys" / "node.key"), "--json"], capsys)
    assert one_json(out)["public_key"] == genesis["members"][0]["node_key"]

    code, out, _ = run(["audit", "replay", "--home", str(home), "--genesis",
                        str(home / "genesis.json"), "--json"], capsys)
    assert code == 0
    rep = one_json(out)
    assert rep["ok"] is True and rep["height"] == 5 and rep["txs"] == gen["txs"]

    chain = tmp_path / "chain.plx"
    code, out, _ = run(["audit", "export", "--home", str(home), "--out", str(chain), "--json"],
                       capsys)
    assert code == 0 and one_json(out)["blocks"] == 5
    code, out, _ = run(["audit", "replay", "--chain", str(chain), "--genesis",
                        str(home / "genesis.json"), "--json"], capsys)
    assert code == 0 and one_json(out)["state_root"] == rep["state_root"]

    # a changed byte: exit 1, one JSON document naming a height
    data = bytearray(chain.read_bytes())
    data[len(data) // 2] ^= 0x10
    chain.write_bytes(bytes(data))
    code, out, err = run(["audit", "replay", "--chain", str(chain), "--genesis",
                          str(home / "genesis.json"), "--json"], capsys)
    assert code == 1
    bad = one_json(out)
    assert bad["ok"] is False and bad["height"] >= 1 and bad["reason"] and bad["code"]
    assert "replay failed at height" in err

    # same seed, same chain
    code, out, _ = run(["dev", "generate", "--out", str(tmp_path / "again"), "--blocks", "5",
                        "--txs-per-block", "8", "--seed", "3", "--json"], capsys)
    assert one_json(out)["state_root"] == gen["state_root"]
    # refuses a non-empty directory
    code, out, _ = run(["dev", "generate", "--out", str(home), "--json"], capsys)
    assert code == 2 and one_json(out)["code"] == "home_exists"


def test_audit_replay_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["audit", "replay", "--json"], capsys)
    assert code == 2 and one_json(out)["ok"] is False
    code, out, _ = run(["audit", "replay", "--chain", str(tmp_path / "x"), "--json"], capsys)
    assert code == 2
    code, out, _ = run(["audit", "replay", "--home", str(tmp_path / "none"), "--genesis",
                        str(tmp_path / "none.json"), "--json"], capsys)
    assert code == 2 and one_json(out)["code"] == "genesis_missing"


def _corrupt_files(home: Path, suffix: str, rng: random.Random, flips: int) -> list[Path]:
    files = sorted((home / "data" / "ledger").glob(f"*.{suffix}"))
    files = [f for f in files if f.stat().st_size > 0]
    for f in files:
        data = bytearray(f.read_bytes())
        for _ in range(flips):
            pos = rng.randrange(len(data))
            data[pos] ^= 1 << rng.randrange(8)
        f.write_bytes(bytes(data))
    return files


@pytest.mark.parametrize(("suffix", "seed"), [("ldb", 1), ("ldb", 2), ("ldb", 3), ("log", 4),
                                              ("log", 5)])
def test_audit_replay_fails_cleanly_on_damaged_store_files(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str, seed: int) -> None:
    home = tmp_path / "home"
    code, out, _ = run(["dev", "generate", "--out", str(home), "--blocks", "6",
                        "--txs-per-block", "10", "--json"], capsys)
    assert code == 0
    if suffix == "ldb":  # move everything from the write-ahead log into table files
        with Store.open(home / "data" / "ledger") as s:
            s.compact()
    files = _corrupt_files(home, suffix, random.Random(seed), flips=8)
    assert files, f"no .{suffix} files to damage"
    code, out, err = run(["audit", "replay", "--home", str(home), "--json"], capsys)
    assert code == 1, out
    doc = one_json(out)
    assert doc["ok"] is False and doc["reason"]
    assert err.startswith("error: ")


def test_cli_subprocess_json_is_one_document(tmp_path: Path) -> None:
    """Through the real console entry point: stdout holds one JSON document, stderr no trace."""
    import subprocess
    import sys

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True,
                              text=True, timeout=120, cwd=Path(__file__).resolve().parents[3])

    home, chain = tmp_path / "home", tmp_path / "c.plx"
    p = cli("dev", "generate", "--out", str(home), "--blocks", "3", "--txs-per-block", "5",
            "--json")
    assert p.returncode == 0, p.stderr
    assert one_json(p.stdout)["height"] == 3
    p = cli("audit", "export", "--home", str(home), "--out", str(chain), "--json")
    assert p.returncode == 0 and one_json(p.stdout)["blocks"] == 3
    data = bytearray(chain.read_bytes())
    data[-200] ^= 0x01  # inside the last block record's seal
    chain.write_bytes(bytes(data))
    p = cli("audit", "replay", "--chain", str(chain), "--genesis", str(home / "genesis.json"),
            "--json")
    assert p.returncode == 1
    doc = one_json(p.stdout)
    assert doc["ok"] is False and doc["height"] == 3, doc
    assert "Traceback" not in p.stderr and p.stderr.startswith("error: replay failed at height 3")
