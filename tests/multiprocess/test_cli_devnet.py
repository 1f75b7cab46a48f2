"""`partledger devnet up/status/down` and the reading commands, as scripts use them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from cli.node._devnet import is_node_process
from tests.node_helpers import processes_under

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=timeout, env=env)


def test_cli_devnet_up_status_down(tmp_path: Path) -> None:
    d = tmp_path / "dn"
    env = {**os.environ, "HOME": str(tmp_path / "home")}
    env.pop("PARTLEDGER_NODE", None)
    try:
        up = cli("devnet", "up", "--nodes", "4", "--dir", str(d), "--json", env=env)
        assert up.returncode == 0, up.stderr[-3000:]
        doc: dict[str, Any] = json.loads(up.stdout)
        assert doc["dir"] == str(d.resolve())
        assert len(doc["nodes"]) == 4
        for n in doc["nodes"]:
            assert {"name", "api", "p2p", "home", "pid", "org_key"} <= set(n)
            assert "/p2p/12D3KooW" in n["p2p"] and n["api"].startswith("http://127.0.0.1:")
            assert Path(n["org_key"]).is_file() and is_node_process(n["pid"], Path(n["home"]))
        # reading commands default to the devnet's first node
        st = cli("status", "--json", env=env)
        assert st.returncode == 0, st.stderr
        status = json.loads(st.stdout)
        assert status["node"] == doc["nodes"][0]["name"] and status["height"] >= 1
        assert {"height", "tip_hash", "state_root", "peers"} <= set(status)
        blk = json.loads(cli("block", "show", "1", "--json", env=env).stdout)
        assert blk["header"]["height"] == 1 and len(blk["hash"]) == 64
        missing = cli("block", "show", "99999999", "--json", env=env)
        assert missing.returncode == 1 and json.loads(missing.stdout)["ok"] is False
        # one node dies; status shows it, down still stops the rest and exits 0
        os.kill(doc["nodes"][2]["pid"], signal.SIGKILL)
        ds = cli("devnet", "status", "--dir", str(d), "--json", env=env)
        nodes = {n["name"]: n for n in json.loads(ds.stdout)["nodes"]}
        assert nodes[doc["nodes"][2]["name"]]["running"] is False
        assert nodes[doc["nodes"][0]["name"]]["running"] is True
        down = cli("devnet", "down", "--dir", str(d), "--json", env=env)
        assert down.returncode == 0, down.stderr
        assert sorted(json.loads(down.stdout)["stopped"]) == sorted(
            n["name"] for i, n in enumerate(doc["nodes"]) if i != 2)
        assert processes_under(d) == []
        again = cli("devnet", "down", "--dir", str(d), "--json", env=env)
        assert again.returncode == 0 and json.loads(again.stdout)["stopped"] == []
    finally:
        for pid in processes_under(d):
            os.kill(pid, signal.SIGKILL)
