"""The side-by-side peer: pysyncobj (Raft, pure Python) with 4 replicas as 4 processes.

Each replica keeps an append-only log reduced to (count, SHA-256 chain over 200-byte payloads)
and serves a small TCP front end: the client pipelines fixed-size requests to the leader, and the
leader answers each one only from pysyncobj's commit callback, so every counted operation was
committed by a majority and applied. pysyncobj's defaults apply (batching on, no fsync, no
signatures) — that is the peer our users would compare us with.

    python bench/peer_raft.py [--nodes 4] [--window 20000] [--duration 20] [--json]

`measure_peer()` is what `bench/consortium.py` calls to put the peer in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from typing import Any

PAYLOAD_BYTES = 200
REQUEST = struct.Struct(">Q200s")
REPLY = struct.Struct(">Qq")
ASK_LEADER = 2**64 - 1
ASK_STATE = 2**64 - 2


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


# -- replica process ---------------------------------------------------------------------------

def replica_main(index: int, raft_ports: list[int], front_port: int) -> None:
    from pysyncobj import SyncObj, SyncObjConf, replicated

    addrs = [f"127.0.0.1:{p}" for p in raft_ports]

    class HashChainLog(SyncObj):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(addrs[index], [a for i, a in enumerate(addrs) if i != index],
                             SyncObjConf())
            self.count = 0
            self.head = bytes(32)

        @replicated  # type: ignore[misc]
        def append(self, payload: bytes) -> int:
            self.count += 1
            self.head = hashlib.sha256(self.head + payload).digest()
            return self.count

    log = HashChainLog()
    lock = threading.Lock()
    outboxes: dict[socket.socket, list[bytes]] = {}

    def flush_replies() -> None:  # once per Raft tick, in pysyncobj's thread
        with lock:
            ready = [(c, b"".join(box)) for c, box in outboxes.items() if box]
            for box in outboxes.values():
                box.clear()
        for conn, data in ready:
            with contextlib.suppress(OSError):
                conn.sendall(data)

    log.addOnTickCallback(flush_replies)

    def serve(conn: socket.socket) -> None:
        box: list[bytes] = []
        with lock:
            outboxes[conn] = box
        pending = b""
        while data := conn.recv(1 << 18):
            pending += data
            whole = len(pending) // REQUEST.size
            for k in range(whole):
                rid, payload = REQUEST.unpack_from(pending, k * REQUEST.size)
                if rid == ASK_LEADER:
                    leader = log._getLeader()
                    idx = -1 if leader is None else addrs.index(leader.address)
                    conn.sendall(REPLY.pack(rid, idx))
                elif rid == ASK_STATE:
                    conn.sendall(REPLY.pack(rid, log.count)
                                 + REPLY.pack(rid, int.from_bytes(log.head[:8], "big", signed=True)))
                else:
                    def done(result: Any, err: Any, rid: int = rid) -> None:
                        with lock:
                            box.append(REPLY.pack(rid, result if err == 0 else -1))
                    log.append(payload, callback=done)
            pending = pending[whole * REQUEST.size:]
        with lock:
            outboxes.pop(conn, None)

    server = socket.create_server(("127.0.0.1", front_port))
    while True:
        conn, _ = server.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


# -- client ------------------------------------------------------------------------------------

def _recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("replica closed the connection")
        buf += chunk
    return buf


def _ask(port: int, rid: int, replies: int = 1) -> list[int]:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(REQUEST.pack(rid, b""))
        return [REPLY.unpack(_recv_exact(s, REPLY.size))[1] for _ in range(replies)]


def _wait_for_leader(front_ports: list[int], deadline_s: float) -> int:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            seen = [_ask(p, ASK_LEADER)[0] for p in front_ports]
        except OSError:
            seen = [-1]
        if seen[0] >= 0 and len(set(seen)) == 1:
            return seen[0]
        time.sleep(0.1)
    raise RuntimeError("the Raft replicas did not agree on a leader in time")


def _pipeline(s: socket.socket, window: int, warmup_s: float, duration_s: float,
              first_id: int) -> dict[str, Any]:
    payloads = [os.urandom(PAYLOAD_BYTES) for _ in range(256)]
    sent_at: dict[int, float] = {}
    rid, in_flight, done, errors = first_id, 0, 0, 0
    latencies: list[float] = []
    start = time.perf_counter()
    t_begin, t_end = start + warmup_s, start + warmup_s + duration_s
    buf = b""
    s.settimeout(30)
    while (now := time.perf_counter()) < t_end:
        if in_flight < window:
            frames = []
            for _ in range(window - in_flight):
                frames.append(REQUEST.pack(rid, payloads[rid & 255]))
                sent_at[rid] = now
                rid += 1
            s.sendall(b"".join(frames))
            in_flight = window
        buf += s.recv(1 << 16)
        now = time.perf_counter()
        whole = len(buf) // REPLY.size
        for k in range(whole):
            r, value = REPLY.unpack_from(buf, k * REPLY.size)
            in_flight -= 1
            t0 = sent_at.pop(r)
            if value <= 0:
                errors += 1
            elif t_begin <= now < t_end:
                done += 1
                latencies.append(now - t0)
        buf = buf[whole * REPLY.size:]
    latencies.sort()
    return {"window": window, "ops_s": done / duration_s, "errors": errors,
            "p50_ms": statistics.median(latencies) * 1e3 if latencies else None,
            "p99_ms": latencies[int(0.99 * (len(latencies) - 1))] * 1e3 if latencies else None}


def measure_peer(*, nodes: int = 4, window: int = 20_000, warmup_s: float = 3.0,
                 duration_s: float = 20.0) -> dict[str, Any]:
    """Start `nodes` replicas, saturate the leader for `duration_s`, stop them; return figures."""
    ports = free_ports(2 * nodes)
    raft_ports, front_ports = ports[:nodes], ports[nodes:]
    procs = [subprocess.Popen([sys.executable, __file__, "--replica", str(i),
                               ",".join(map(str, raft_ports)), str(front_ports[i])],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for i in range(nodes)]
    try:
        leader = _wait_for_leader(front_ports, 30)
        with socket.create_connection(("127.0.0.1", front_ports[leader])) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            result = _pipeline(s, window, warmup_s, duration_s, 1)
        states: set[tuple[int, ...]] = set()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            states = {tuple(_ask(p, ASK_STATE, 2)) for p in front_ports}
            if len(states) == 1:
                break
            time.sleep(0.2)
        result["replicas_agree"] = len(states) == 1
        return result
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--replica":
        replica_main(int(sys.argv[2]), [int(x) for x in sys.argv[3].split(",")], int(sys.argv[4]))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--window", type=int, default=20_000)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    r = measure_peer(nodes=a.nodes, window=a.window, warmup_s=a.warmup, duration_s=a.duration)
    if a.json:
        print(json.dumps(r))
    else:
        print(f"pysyncobj x{a.nodes}: {r['ops_s']:,.0f} committed ops/s (window {a.window}), "
              f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, errors {r['errors']}, "
              f"replicas agree: {r['replicas_agree']}")


if __name__ == "__main__":
    main()
