"""Helpers shared by the benchmarks: statistics, machine and load figures, JSON output, the
EPCIS workload with many signers, the open-loop load generator and the validation ceiling.

Every benchmark prints its figures beside a baseline measured in the same run and the ratio of
the two, and with `--json` prints one JSON object last on stdout (progress goes to stderr). The
machine is shared and noisy, so each phase also records how busy the machine was with work that
is not ours (`foreign_cores`): a figure taken while other processes used a core says so.
"""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import struct
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]


# -- statistics and output -----------------------------------------------------------------------

def median(xs: Iterable[float]) -> float:
    v = list(xs)
    return statistics.median(v) if v else float("nan")


def percentile(xs: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank of the sorted values; NaN when empty."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def ratio(ours: float, base: float) -> float:
    return ours / base if base else float("nan")


def ratio_line(name: str, ours: float, base: float, *, unit: str, base_name: str) -> str:
    return (f"{name:<34} {ours:>12,.1f} {unit:<6} {base_name} {base:>12,.1f}  "
            f"ratio {ratio(ours, base):5.2f}")


def emit_json(obj: dict[str, Any]) -> None:
    """The single JSON object a `--json` run prints last on stdout."""
    print(json.dumps(obj, sort_keys=True, default=_json_default), flush=True)


def _json_default(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, Path):
        return str(v)
    raise TypeError(f"not JSON: {type(v).__name__}")


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpus": os.cpu_count(),
            "cpu_model": model, "python": platform.python_version(),
            "loadavg": list(os.getloadavg())}


# -- machine load ---------------------------------------------------------------------------------

def _busy_jiffies() -> int:
    parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    v = [int(x) for x in parts]
    return sum(v) - v[3] - v[4]  # minus idle and iowait


class CpuMeter:
    """Cores used by the whole machine and by our processes over an interval; `foreign` is the
    rest: other people's work that shared the cores with the benchmark."""

    def __init__(self, pids: Iterable[int] = ()) -> None:
        import psutil

        self._psutil = psutil
        self.pids = set(pids) | {os.getpid()}
        self._tick = os.sysconf("SC_CLK_TCK")
        self.start()

    def _ours(self) -> float:
        import resource

        ru = resource.getrusage(resource.RUSAGE_CHILDREN)  # children already reaped
        total = ru.ru_utime + ru.ru_stime
        procs: dict[int, Any] = {}  # each process once: our pids are often our children too
        for pid in self.pids:
            try:
                p = self._psutil.Process(pid)
                procs.update((q.pid, q) for q in [p, *p.children(recursive=True)])
            except self._psutil.Error:
                continue
        for q in procs.values():
            try:
                t = q.cpu_times()
                total += t.user + t.system
            except self._psutil.Error:
                continue
        return total

    def start(self) -> None:
        self._t0, self._busy0, self._ours0 = time.monotonic(), _busy_jiffies(), self._ours()

    def add(self, pids: Iterable[int]) -> None:
        self.pids |= set(pids)

    def stop(self) -> dict[str, float]:
        wall = max(1e-9, time.monotonic() - self._t0)
        busy = (_busy_jiffies() - self._busy0) / self._tick / wall
        ours = max(0.0, (self._ours() - self._ours0) / wall)
        return {"busy_cores": round(busy, 2), "our_cores": round(ours, 2),
                "foreign_cores": round(max(0.0, busy - ours), 2)}


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) one process has used so far (0 once it is gone)."""
    import psutil

    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(t.user + t.system)


def rss_mb(pid: int) -> float:
    import psutil

    try:
        return float(psutil.Process(pid).memory_info().rss) / 2**20
    except psutil.Error:
        return float("nan")


def anon_rss_mb(pid: int) -> float:
    """The anonymous part of a process's RSS (heap, stacks: memory it owns), without the
    file-backed pages it maps: LevelDB maps its table files, and every page of them a node
    reads counts in RSS although it is page cache the kernel reclaims under pressure."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


# -- the workload: commissioning ObjectEvents from many agents ------------------------------------

@dataclass(frozen=True, slots=True)
class Agent:
    """A signing key registered (AgentAdd) under an organisation, with the org's GS1 prefix."""

    key: Any  # ledger.SigningKey
    org_index: int
    prefix: str


def make_agents(n_orgs: int, per_org: int, seed: int) -> list[Agent]:
    from ledger import SigningKey, sha256

    # 9-digit GS1 company prefixes: distinct per org, and (almost surely) not overlapping the
    # 7-digit ones the synthetic workload of a generated chain claims
    prefixes = [f"9{(seed * 7919 + (i + 1) * 104_729) % 10**8:08d}" for i in range(n_orgs)]
    return [Agent(SigningKey(sha256(b"bench agent %d/%d/%d" % (seed, o, j))), o, prefixes[o])
            for o in range(n_orgs) for j in range(per_org)]


def setup_specs(agents: Sequence[Agent], n_orgs: int) -> list[tuple[int, str, dict[str, Any]]]:
    """(org index, kind, body): each org claims its prefix and adds its agents."""
    out: list[tuple[int, str, dict[str, Any]]] = []
    for o in range(n_orgs):
        prefix = next(a.prefix for a in agents if a.org_index == o)
        out.append((o, "PrefixClaim", {"prefix": prefix}))
        out.extend((o, "AgentAdd", {"key": a.key.public}) for a in agents if a.org_index == o)
    return out


def event_body(agent: Agent, serial: str, rng: random.Random) -> dict[str, Any]:
    """An EPCIS 2.0 ObjectEvent commissioning 1-3 new serialised parts (about 400 bytes signed)."""
    cp = agent.prefix
    iir = "0" + str(rng.randrange(100, 400)).zfill(12 - len(cp))
    loc = {"id": f"urn:epc:id:sgln:{cp}.{str(rng.randrange(1, 4)).zfill(12 - len(cp))}.0"}
    epcs = [f"urn:epc:id:sgtin:{cp}.{iir}.{serial}s{j}" for j in range(rng.randrange(1, 4))]
    return {"type": "ObjectEvent", "eventID": f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128))}",
            "eventTime": "2025-03-01T10:00:00.000Z", "eventTimeZoneOffset": "+00:00",
            "action": "ADD", "bizStep": "commissioning", "disposition": "active",
            "epcList": epcs, "bizLocation": loc, "readPoint": loc}


def _sign_range(args: tuple[bytes, list[tuple[bytes, str, int, int]], str, str]
                ) -> list[tuple[bytes, bytes]]:
    """Worker: sign `count` events for each (agent seed, prefix, first nonce, count)."""
    from ledger import SigningKey, Transaction

    chain, jobs, seed, tag = args
    rng = random.Random(seed)
    out: list[tuple[bytes, bytes]] = []
    for agent_seed, prefix, first, count in jobs:
        a = Agent(SigningKey(agent_seed), 0, prefix)
        for n in range(first, first + count):
            body = event_body(a, f"{tag}{agent_seed[:6].hex()}n{n}", rng)
            tx = Transaction.create(a.key, chain=chain, kind="ObjectEvent", body=body, nonce=n)
            out.append((tx.encode(), tx.tx_id))
    return out


class EventSource:
    """Pre-signed events for each agent with consecutive nonces, so a phase's transactions are
    signed before the clock starts. `take(n)` interleaves agents, so a batch has many signers
    and no signer's nonces serialise the pipeline."""

    def __init__(self, chain: bytes, agents: Sequence[Agent], tag: str) -> None:
        self.chain, self.agents, self.tag = chain, list(agents), tag
        self.next_nonce = [0] * len(agents)
        self.carry: list[tuple[int, bytes, bytes]] = []  # signed, never sent: go first
        self._calls = 0
        self._agent_of: dict[bytes, tuple[int, bytes]] = {}

    def give_back(self, raws: Iterable[bytes]) -> None:
        """Transactions a phase did not send: the next `sign` hands them out first (in nonce
        order), so no signer is left with a nonce gap."""
        back = [(self._agent_of[r][0], r, self._agent_of[r][1]) for r in raws]
        self.carry = back + self.carry

    def sign(self, n: int, *, workers: int = 2) -> list[tuple[int, bytes, bytes]]:
        """`n` transactions as (agent index, raw bytes, tx id), agents round-robin; the ones
        given back by the previous phase first."""
        carried, self.carry = self.carry, []
        n = max(0, n - len(carried))
        per = [n // len(self.agents) + (1 if i < n % len(self.agents) else 0)
               for i in range(len(self.agents))]
        jobs = [(a.key.seed, a.prefix, self.next_nonce[i], per[i])
                for i, a in enumerate(self.agents)]
        chunks = [jobs[k::workers] for k in range(workers)]
        self._calls += 1  # event ids must differ between calls (the app refuses a repeated one)
        args = [(self.chain, c, f"{self.tag}/{self._calls}/{k}", self.tag)
                for k, c in enumerate(chunks)]
        if workers > 1 and n > 2000:
            import multiprocessing as mp

            with mp.get_context("spawn").Pool(workers) as pool:
                results = pool.map(_sign_range, args)
        else:
            results = [_sign_range(a) for a in args]
        per_agent: dict[int, list[tuple[bytes, bytes]]] = {}
        for k, chunk_jobs in enumerate(chunks):
            pos = 0
            for j in chunk_jobs:
                idx = next(i for i, a in enumerate(self.agents) if a.key.seed == j[0])
                per_agent[idx] = results[k][pos:pos + j[3]]
                pos += j[3]
        for i in range(len(self.agents)):
            self.next_nonce[i] += per[i]
        out: list[tuple[int, bytes, bytes]] = []
        depth = max(per) if per else 0
        for d in range(depth):
            for i in range(len(self.agents)):
                lst = per_agent.get(i, [])
                if d < len(lst):
                    out.append((i, *lst[d]))
        for i, raw, tx_id in out:
            self._agent_of[raw] = (i, tx_id)
        return carried + out


# -- streams of pre-signed transactions, handed to the generator process through a file -----------

_REC = struct.Struct(">II")  # stream index, raw length; then raw bytes and the 32-byte tx id


def write_streams(path: Path, streams: Sequence[Sequence[tuple[bytes, bytes]]]) -> None:
    """Length-prefixed records (a phase's transactions can exceed one msgpack document's
    size limit, and this is a private hand-over file, not a format)."""
    with open(path, "wb") as f:
        for k, stream in enumerate(streams):
            for raw, tx_id in stream:
                f.write(_REC.pack(k, len(raw)) + raw + tx_id)


def read_streams(path: Path) -> list[list[tuple[bytes, bytes]]]:
    data = path.read_bytes()
    out: list[list[tuple[bytes, bytes]]] = []
    off = 0
    while off < len(data):
        k, n = _REC.unpack_from(data, off)
        off += _REC.size
        while len(out) <= k:
            out.append([])
        out[k].append((data[off:off + n], data[off + n:off + n + 32]))
        off += n + 32
    return out


# -- the open-loop load generator ------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class LoadSpec:
    """One phase of load: `rate` tx/s in total, spread over `urls`, from `start_at` (wall clock;
    0: half a second after the generator is ready, see `start_load`) for `warmup_s + duration_s`; only batches submitted after the warm-up count. Each node gets
    its own stream (an agent always talks to the same node, so its nonces arrive in order)."""

    urls: list[str]
    streams_file: str  # see `write_streams`
    rate: float
    start_at: float
    warmup_s: float
    duration_s: float
    tick_s: float = 0.01
    max_waiters_per_node: int = 16  # latency samples in flight per node (bounds node work)
    pause_mempool: int = 0  # > 0: hold a node's stream while its mempool holds this many


def run_load(spec: LoadSpec) -> dict[str, Any]:
    """Run one load phase in a separate process; returns its figures (see `_load_main`)."""
    spec, handle = start_load(spec)
    return finish_load(spec, handle)


def start_load(spec: LoadSpec) -> tuple[LoadSpec, tuple[Any, Any]]:
    """Start the generator process and wait until it is ready (imports done, transactions
    loaded: that can take seconds on a busy machine); returns the spec with its actual start
    time and the handle `finish_load` collects from."""
    import dataclasses
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    q: Any = ctx.Queue()
    p = ctx.Process(target=_load_entry, args=(spec, q), daemon=True)
    p.start()
    msg = q.get(timeout=300)
    if "error" in msg:
        raise RuntimeError(f"load generator: {msg['error']}")
    return dataclasses.replace(spec, start_at=msg["start_at"]), (p, q)


def finish_load(spec: LoadSpec, handle: tuple[Any, Any]) -> dict[str, Any]:
    p, q = handle
    try:
        result: dict[str, Any] = q.get(timeout=max(0.0, spec.start_at - time.time())
                                       + spec.warmup_s + spec.duration_s + 180)
    finally:
        p.join(timeout=30)
        if p.is_alive():
            p.kill()
    if "error" in result:
        raise RuntimeError(f"load generator: {result['error']}")
    return result


def _load_entry(spec: LoadSpec, q: Any) -> None:
    import asyncio
    import traceback

    try:
        q.put(asyncio.run(_load_main(spec, q)))
    except BaseException as exc:  # reported to the parent
        q.put({"error": f"{exc!r}: {traceback.format_exc()[-1500:]}"})


async def _load_main(spec: LoadSpec, q: Any) -> dict[str, Any]:
    """Open loop: every tick, each node's stream is sent what its share of `rate` owes by now
    (msgpack body, one POST /v1/txs per node per tick). A batch is a latency sample when a waiter
    slot of that node is free: POST /v1/txs/status long-polls until all of it is committed;
    latency = answer time - submit time. Rejections are counted by code; a `mempool_full`
    rejection puts the transactions back at the head of the stream (no nonce gap)."""
    import asyncio
    from collections import deque

    # aiohttp: less client CPU per request than httpx, and the load generator shares the
    # 2 cores with the nodes it measures
    import aiohttp

    from ledger import encode

    streams = [deque(s) for s in read_streams(Path(spec.streams_file))]
    if not spec.start_at:
        import dataclasses

        spec = dataclasses.replace(spec, start_at=time.time() + 0.5)
    q.put({"start_at": spec.start_at})
    n = len(spec.urls)
    per_node = spec.rate / n
    lat: list[float] = []
    lat_all: list[float] = []
    codes: dict[str, int] = {}
    sent = [0] * n
    sent_window = 0
    accepted = 0
    waiters = [0] * n
    mempool = [0] * n
    errors: list[str] = []
    # HTTP requests made in the window, by kind: each costs a node a few hundred µs of CPU
    # in its HTTP server, whatever it carries (docs/performance.md)
    requests = {"submit": 0, "wait": 0, "status": 0}
    t_begin = spec.start_at + spec.warmup_s
    t_end = t_begin + spec.duration_s
    # submissions and long-polling waiters use separate clients: a waiter holds its connection
    # until the batch commits, and must never make a submission queue for a free connection
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(
            timeout=timeout, connector=aiohttp.TCPConnector(limit=64 * n)) as client, \
            aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(
                limit=n * spec.max_waiters_per_node + 8)) as waiter_client:
        tasks: set[asyncio.Task[None]] = set()
        http_errors = (aiohttp.ClientError, asyncio.TimeoutError)

        async def wait_commit(k: int, ids: list[bytes], t0: float, counted: bool) -> None:
            count("wait")
            try:
                async with waiter_client.post(
                        f"{spec.urls[k]}/v1/txs/status",
                        json={"tx_ids": [i.hex() for i in ids], "wait_ms": 60_000}) as r:
                    doc = await r.json()
                t1 = time.time()
                if all(s["status"] == "committed" for s in doc["statuses"]):
                    lat_all.append(t1 - t0)
                    if counted:
                        lat.append(t1 - t0)
            except (*http_errors, ValueError, KeyError) as exc:
                errors.append(f"wait: {exc!r}")
            finally:
                waiters[k] -= 1

        async def submit(k: int, batch: list[tuple[bytes, bytes]]) -> None:
            nonlocal accepted
            t0 = time.time()
            counted = t_begin <= t0 < t_end
            count("submit")
            try:
                async with client.post(f"{spec.urls[k]}/v1/txs",
                                       data=encode([raw for raw, _ in batch]),
                                       headers={"content-type": "application/msgpack"}) as r:
                    doc = await r.json(content_type=None)
            except (*http_errors, ValueError) as exc:
                errors.append(f"submit: {exc!r}")
                streams[k].extendleft(reversed(batch))
                return
            results = doc.get("results", [doc]) if isinstance(doc, dict) else []
            fill = doc.get("mempool") if isinstance(doc, dict) else None
            if isinstance(fill, dict) and isinstance(fill.get("size"), int):
                mempool[k] = fill["size"]
            ok_ids: list[bytes] = []
            retry: list[tuple[bytes, bytes]] = []
            for item, res in zip(batch, results, strict=False):
                code = res.get("code", "?")
                if res.get("accepted"):
                    ok_ids.append(item[1])
                elif code == "mempool_full":
                    retry.append(item)
                codes[code] = codes.get(code, 0) + 1
            accepted += len(ok_ids)
            if retry:
                streams[k].extendleft(reversed(retry))
            if ok_ids and waiters[k] < spec.max_waiters_per_node:
                waiters[k] += 1
                spawn(wait_commit(k, ok_ids, t0, counted))

        def count(kind: str) -> None:
            if t_begin <= time.time() < t_end:
                requests[kind] += 1

        def spawn(coro: Any) -> None:
            t = asyncio.ensure_future(coro)
            tasks.add(t)
            t.add_done_callback(tasks.discard)

        async def poll_mempools() -> None:
            # a submission's answer carries its node's mempool fill; a paused stream sends
            # nothing, so only a paused node is polled, to learn when to resume
            while time.time() < t_end:
                for k, url in enumerate(spec.urls):
                    if mempool[k] < spec.pause_mempool:
                        continue
                    count("status")
                    try:
                        async with client.get(f"{url}/v1/status") as r:
                            mempool[k] = int((await r.json())["mempool"])
                    except (*http_errors, ValueError, KeyError):
                        pass
                await asyncio.sleep(0.1)

        if spec.pause_mempool:
            spawn(poll_mempools())
        await asyncio.sleep(max(0.0, spec.start_at - time.time()))
        owed = [0.0] * n
        last = time.time()
        while (now := time.time()) < t_end:
            dt, last = now - last, now
            for k in range(n):
                owed[k] += per_node * dt
                if spec.pause_mempool and mempool[k] >= spec.pause_mempool:
                    owed[k] = min(owed[k], per_node * spec.tick_s)
                    continue
                take = min(int(owed[k]), len(streams[k]), 2000)
                if take <= 0:
                    continue
                owed[k] -= take
                batch = [streams[k].popleft() for _ in range(take)]
                sent[k] += take
                if t_begin <= now < t_end:
                    sent_window += take
                spawn(submit(k, batch))
            await asyncio.sleep(max(0.0, spec.tick_s - (time.time() - now)))
        # let latency samples of the window finish (bounded)
        deadline = time.time() + 60
        while tasks and time.time() < deadline:
            await asyncio.sleep(0.05)
        for t in list(tasks):
            t.cancel()
    lat.sort()
    return {"offered_tps": sent_window / spec.duration_s, "sent": sum(sent),
            "accepted": accepted, "codes": codes, "samples": len(lat),
            "p50_ms": percentile(lat, 0.5) * 1e3, "p99_ms": percentile(lat, 0.99) * 1e3,
            "p50_all_ms": percentile(lat_all, 0.5) * 1e3, "errors": errors[:5],
            "n_errors": len(errors),
            "requests_per_node_s": {k: round(v / spec.duration_s / n, 1)
                                    for k, v in requests.items()},
            "left_unsent": sum(len(s) for s in streams),
            "unsent": [[raw for raw, _ in s] for s in streams]}


# -- the validation ceiling -----------------------------------------------------------------------

def settle_store(ledger_dir: Path, *, quiet_s: float = 6.0, poll_s: float = 2.0) -> None:
    """Open a generated store as a node would and wait until LevelDB has no compaction left.

    A store written as fast as `dev generate` writes it ends with levels over their targets;
    every copy made for a benchmark's validators would pay that debt during the measurement
    (seen: 1 GB rewritten during the first 15 s of a light phase), which a node that has been
    running all along has long paid."""
    from ledger import Store

    with Store.open(ledger_dir, paranoid=True) as store:
        last, quiet_since = store.stats(), time.monotonic()
        while time.monotonic() - quiet_since < quiet_s:
            time.sleep(poll_s)
            now = store.stats()
            if now != last:
                last, quiet_since = now, time.monotonic()
        log(f"store settled: {last.tables} tables, {last.table_bytes >> 20} MB, "
            f"{last.compaction_seconds} s of compaction")


def validation_ceiling(source_ledger: Path, genesis_path: Path, *, max_txs: int,
                       native: bool = False, skip_blocks: int = 0) -> dict[str, Any]:
    """Tx/s of ONE process decoding, verifying (`ledger.verify_transactions`), executing and
    storing (synced LevelDB batch per block) the blocks of `source_ledger` into a fresh store.

    Runs in a subprocess (`PARTLEDGER_NATIVE=0` unless `native`), single threaded. The first
    `skip_blocks` blocks are applied untimed (setup), then up to `max_txs` transactions are timed.
    """
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="pl-ceiling-") as tmp:
        env = {**os.environ, "PARTLEDGER_NATIVE": "1" if native else "0"}
        out = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--ceiling", str(source_ledger),
             str(genesis_path), str(max_txs), str(skip_blocks), tmp],
            env=env, capture_output=True, text=True, check=False, cwd=str(REPO))
        if out.returncode != 0:
            raise RuntimeError(f"ceiling run failed: {out.stderr[-2000:]}")
        doc: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return doc


def _ceiling_main(source: str, genesis_path: str, max_txs: int, skip: int, tmp: str) -> None:
    from ledger import Block, BlockContext, Genesis, Seal, Store, verify_transactions
    from ledger._accel import BACKEND_NAME
    from ledger._chain import default_application, init_store

    genesis = Genesis.load(Path(genesis_path))
    app = default_application()
    src = Store.open(source, genesis=genesis, read_only=True)
    dst = init_store(Path(tmp) / "ledger", genesis, app)
    raws: list[tuple[bytes, bytes]] = []
    timed_txs = 0
    for h in range(1, src.height + 1):
        b, s = src.block_raw(h), src.seal_raw(h)
        assert b is not None and s is not None
        raws.append((b, s))
        if h > skip:
            timed_txs += Block.decode(b).header.tx_count
            if timed_txs >= max_txs:
                break
    src.close()

    def apply(b: bytes, s: bytes) -> int:
        block = Block.decode(b)
        seal = Seal.decode(s)
        if not all(verify_transactions(block.txs)):
            raise RuntimeError(f"bad signature in block {block.height}")
        h = block.header
        ctx = BlockContext(chain=h.chain, height=h.height, time_ms=h.time_ms,
                           proposer=h.proposer)
        ex = app.execute(dst, ctx, list(block.txs))
        if not all(r.ok for r in ex.results):
            raise RuntimeError(f"block {h.height}: a transaction is rejected")
        dst.commit_block(block, seal, ex.writes)
        return len(block.txs)

    for b, s in raws[:skip]:
        apply(b, s)
    n = 0
    t0 = time.perf_counter()
    c0 = time.process_time()
    for b, s in raws[skip:]:
        n += apply(b, s)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    dst.close()
    print(json.dumps({"txs": n, "seconds": wall, "cpu_seconds": cpu, "tps": n / wall,
                      "tps_per_cpu_second": n / cpu if cpu else None, "backend": BACKEND_NAME}))


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--ceiling":
    _ceiling_main(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
