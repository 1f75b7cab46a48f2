"""The node's HTTP API: a Starlette app served by Hypercorn on the node's trio loop.

Loopback by default. When it listens beyond loopback, every write endpoint needs
`Authorization: Bearer <token>` with one of the organisation tokens of `[api.tokens]`.
Request bodies are size-limited (413); bad requests get a 4xx with `{"error", "code"}`.
Bytes are lowercase hex in JSON. The OpenAPI description is at `/openapi.json`; docs/api.md
describes each endpoint with examples.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cli.node._metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from ledger import Block, Seal, Transaction, decode, encode
from ledger.errors import DecodeError, PartledgerError

if TYPE_CHECKING:
    from cli.node._node import Node

log = logging.getLogger("partledger.api")
API_VERSION = "1"
MAX_WAIT_MS = 60_000
Handler = Callable[[Request], Awaitable[Response]]


_FINAL_STATUSES = frozenset({"committed", "rejected"})  # a transaction's status ends there


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _json_safe(v: Any) -> Any:
    if isinstance(v, bytes | bytearray):
        return bytes(v).hex()
    if isinstance(v, dict):
        return {str(k): _json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_safe(x) for x in v]
    return v


MAX_HEIGHT = 2**63 - 1  # heights are int64 in the canonical codec


class PlainJSON(JSONResponse):
    """The API's JSON (compact, sorted keys, UTF-8) for content built of JSON's own types only,
    which it renders without `_json_safe`'s walk: a submission's per-transaction answers, a
    hundred-odd dicts a request at saturation. orjson renders those 12x faster than the
    standard library's encoder (77 against 6.5 µs for a hundred answers)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SORT_KEYS)


class JSON(PlainJSON):
    """`PlainJSON` for content that may hold bytes (rendered as hex)."""

    def render(self, content: Any) -> bytes:
        return super().render(_json_safe(content))


def _int_arg(request: Request, name: str, default: int, *, maximum: int) -> int:
    text = request.query_params.get(name, "") or str(default)
    if not (text.isascii() and text.isdigit()):
        raise ApiError(400, "bad_param", f"{name} must be a non-negative integer")
    return min(int(text), maximum)


def _hex_arg(value: str, what: str, size: int | None = 32) -> bytes:
    try:
        b = bytes.fromhex(value)
    except ValueError as exc:
        raise ApiError(400, "bad_hex", f"{what} must be hex") from exc
    if size is not None and len(b) != size:
        raise ApiError(400, "bad_hex", f"{what} must be {size} bytes ({2 * size} hex digits)")
    return b


def block_json(block: Block, seal: Seal | None = None) -> dict[str, Any]:
    h = block.header
    out: dict[str, Any] = {
        "hash": block.hash.hex(), "height": h.height,
        "header": {"chain": h.chain.hex(), "height": h.height, "prev_hash": h.prev_hash.hex(),
                   "time_ms": h.time_ms, "proposer": h.proposer.hex(),
                   "tx_root": h.tx_root.hex(), "tx_count": h.tx_count,
                   "state_root": h.state_root.hex(),
                   "validators_hash": h.validators_hash.hex()},
        "txs": [tx_json(tx) for tx in block.txs],
    }
    if seal is not None:
        out["seal"] = {"height": seal.height, "round": seal.round,
                       "block_hash": seal.block_hash.hex(),
                       "votes": [{"validator": pk.hex(), "signature": s.hex()}
                                 for pk, s in seal.votes]}
    return out


def tx_json(tx: Transaction) -> dict[str, Any]:
    return {"tx_id": tx.tx_id.hex(), "kind": tx.kind, "signer": tx.signer.hex(),
            "nonce": tx.nonce, "chain": tx.chain.hex(), "body": _json_safe(dict(tx.body)),
            "sig": tx.sig.hex()}


class Api:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.cfg = node.config.api
        self.tokens = [t.encode() for t in self.cfg.tokens.values()]
        self.require_token = not self.cfg.is_loopback

    # -- plumbing -----------------------------------------------------------------------------
    def wrap(self, fn: Handler, *, write: bool = False) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                if write and self.require_token:
                    self._check_token(request)
                return await fn(request)
            except ApiError as exc:
                return JSON({"error": exc.message, "code": exc.code}, status_code=exc.status)
            except PartledgerError as exc:
                status = 404 if exc.code == "not_found" else 400
                return JSON({"error": exc.message, "code": exc.code}, status_code=status)
            except Exception:
                log.exception("API %s %s failed", request.method, request.url.path)
                return JSON({"error": "internal error (logged by the node)",
                             "code": "internal"}, status_code=500)
        return endpoint

    def _check_token(self, request: Request) -> None:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            raise ApiError(401, "token_required", "this endpoint needs 'Authorization: Bearer "
                           "<token>' (the API listens beyond loopback)")
        given = auth[len("Bearer "):].strip().encode()
        if not any(hmac.compare_digest(given, t) for t in self.tokens):
            raise ApiError(403, "bad_token", "the API token is not valid")

    async def _body(self, request: Request) -> bytes:
        limit = self.cfg.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isascii() and declared.isdigit() \
                and int(declared) > limit:
            raise ApiError(413, "body_too_large", f"the request body is over {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, "body_too_large", f"the request body is over {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    # -- transactions -------------------------------------------------------------------------
    async def submit(self, request: Request) -> Response:
        body = await self._body(request)
        ctype = request.headers.get("content-type", "").split(";")[0].strip()
        raws: list[bytes]
        if ctype in ("application/msgpack", "application/x-msgpack"):
            try:
                value = decode(body)
            except DecodeError as exc:
                raise ApiError(400, exc.code, f"the body is not canonical msgpack: {exc}") from exc
            raws = value if isinstance(value, list) else [body]
            if not all(isinstance(r, bytes) for r in raws):
                raise ApiError(400, "bad_body", "a msgpack body is one transaction or a list of "
                               "transaction byte strings")
        else:
            try:
                doc = orjson.loads(body)
            except ValueError as exc:
                raise ApiError(400, "bad_json", "the body is not JSON") from exc
            if isinstance(doc, dict) and isinstance(doc.get("tx"), str):
                items = [doc["tx"]]
            elif isinstance(doc, dict) and isinstance(doc.get("txs"), list):
                items = doc["txs"]
            else:
                raise ApiError(400, "bad_body", 'expected {"tx": "<hex>"} or '
                               '{"txs": ["<hex>", ...]}')
            if not all(isinstance(x, str) for x in items):
                raise ApiError(400, "bad_body", "each transaction must be a hex string")
            raws = [_hex_arg(x, "tx", size=None) for x in items]
        if not raws:
            raise ApiError(400, "empty", "no transactions in the request")
        if len(raws) > self.cfg.max_batch_txs:
            raise ApiError(413, "batch_too_large",
                           f"{len(raws)} transactions; at most {self.cfg.max_batch_txs} per "
                           "request")
        txs: list[Transaction] = []
        for i, raw in enumerate(raws):
            try:
                txs.append(Transaction.decode(raw))
            except DecodeError as exc:
                raise ApiError(400, exc.code, f"transaction {i}: {exc.message}") from exc
        verdicts = await self.node.submit(txs)
        results = [{"tx_id": v.tx_id.hex(), "accepted": v.ok, "status": "pending" if v.ok
                    else "rejected", "code": v.code, "reason": v.reason} for v in verdicts]
        accepted = sum(1 for v in verdicts if v.ok)
        status = 202 if accepted else 400
        if len(raws) == 1:
            return PlainJSON(results[0], status_code=status)
        # the mempool's fill after this batch: a client sending thousands of transactions a
        # second paces itself on it instead of polling /v1/status
        mempool = {"size": len(self.node.mempool), "max_txs": self.node.mempool.max_txs}
        return PlainJSON({"accepted": accepted, "rejected": len(raws) - accepted,
                          "results": results, "mempool": mempool},
                         status_code=202 if accepted else 400)

    async def tx_status(self, request: Request) -> Response:
        tx_id = _hex_arg(request.path_params["tx_id"], "tx id")
        wait_ms = _int_arg(request, "wait_ms", 0, maximum=MAX_WAIT_MS)
        deadline = trio.current_time() + wait_ms / 1000
        while True:
            st = self.node.tx_status(tx_id)
            if st is not None and st["status"] != "pending":
                return JSON(st)
            remaining = deadline - trio.current_time()
            if remaining <= 0:
                break
            with trio.move_on_after(remaining):
                await self.node.commit_event.wait()
        if st is None:
            raise ApiError(404, "not_found", f"transaction {tx_id.hex()} is unknown here")
        return JSON(st)

    async def tx_statuses(self, request: Request) -> Response:
        try:
            doc = orjson.loads(await self._body(request))
        except ValueError as exc:
            raise ApiError(400, "bad_json", "the body is not JSON") from exc
        ids = doc.get("tx_ids") if isinstance(doc, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ApiError(400, "bad_body", 'expected {"tx_ids": ["<hex>", ...]}')
        if len(ids) > 10 * self.cfg.max_batch_txs:
            raise ApiError(413, "batch_too_large", "too many transaction ids in one request")
        tx_ids = [_hex_arg(i, "tx id") for i in ids]
        wait_ms = doc.get("wait_ms", 0)
        if not isinstance(wait_ms, int) or wait_ms < 0:
            raise ApiError(400, "bad_body", "wait_ms must be a non-negative integer")
        deadline = trio.current_time() + min(wait_ms, MAX_WAIT_MS) / 1000
        out: list[dict[str, Any]] = [{}] * len(tx_ids)
        open_ = list(range(len(tx_ids)))  # positions whose status may still change
        pending = self.node.mempool
        while True:
            for i in open_:
                if tx_ids[i] in pending and out[i].get("status") == "pending":
                    continue  # still pending: each commit wakes every waiter, mostly for this
                st = self.node.tx_status(tx_ids[i])
                out[i] = st if st is not None else {"tx_id": tx_ids[i].hex(),
                                                    "status": "unknown"}
            open_ = [i for i in open_ if out[i]["status"] not in _FINAL_STATUSES]
            remaining = deadline - trio.current_time()
            if remaining <= 0 or not open_:
                break
            with trio.move_on_after(remaining):
                await self.node.commit_event.wait()
        counts: dict[str, int] = {}
        for o in out:
            counts[o["status"]] = counts.get(o["status"], 0) + 1
        # `Node.tx_status` answers in JSON's own types (ids in hex)
        return PlainJSON({"counts": counts, "statuses": out})

    async def tx_proof(self, request: Request) -> Response:
        from ledger._proof import build_bundle

        tx_id = _hex_arg(request.path_params["tx_id"], "tx id")
        loc = self.node.store.tx_location(tx_id)
        if loc is None:
            raise ApiError(404, "not_found", f"transaction {tx_id.hex()} is not committed")
        parts, seal = self.node.store.block_parts(loc[0]), self.node.store.seal(loc[0])
        assert parts is not None and seal is not None
        return JSON(build_bundle(*parts, seal, loc[1]))

    async def nonce(self, request: Request) -> Response:
        signer = _hex_arg(request.path_params["signer"], "signer public key")
        return JSON({"signer": signer.hex(), "next_nonce": self.node.mempool.next_nonce(signer)})

    # -- chain --------------------------------------------------------------------------------
    def _height(self, text: str) -> int:
        if text == "latest":
            return self.node.store.height
        if not (text.isascii() and text.isdigit()):
            raise ApiError(400, "bad_height", "height must be a number or 'latest'")
        if len(text) > 19 or int(text) > MAX_HEIGHT:
            raise ApiError(400, "bad_height", f"height must be at most {MAX_HEIGHT}")
        return int(text)

    async def block(self, request: Request) -> Response:
        h = self._height(request.path_params["height"])
        store = self.node.store
        raw, seal_raw = store.block_raw(h), store.seal_raw(h)
        if raw is None or seal_raw is None:
            raise ApiError(404, "not_found", f"no block at height {h} (tip {store.height})")
        if request.query_params.get("format") == "msgpack":
            return Response(raw, media_type="application/msgpack")
        return JSON(block_json(Block.decode(raw), Seal.decode(seal_raw)))

    async def chain_records(self, request: Request) -> Response:
        """Blocks with their seals as canonical bytes, for auditors replaying a live node:
        msgpack `[[height, block bytes, seal bytes], ...]` from `?from=H`, at most `limit`
        records or about 8 MiB per answer."""
        store = self.node.store
        start = self._height(request.query_params.get("from", "1") or "1")
        limit = _int_arg(request, "limit", 200, maximum=1000)
        out: list[list[Any]] = []
        size = 0
        for h in range(max(1, start), min(store.height, start + limit - 1) + 1):
            raw, seal_raw = store.block_raw(h), store.seal_raw(h)
            if raw is None or seal_raw is None:
                break
            out.append([h, raw, seal_raw])
            size += len(raw) + len(seal_raw)
            if size > 8 * 1024 * 1024:
                break
        return Response(encode(out), media_type="application/msgpack")

    async def blocks(self, request: Request) -> Response:
        store = self.node.store
        tip = store.height
        limit = _int_arg(request, "limit", 20, maximum=200)
        start = _int_arg(request, "from", 0, maximum=2**62) or max(1, tip - limit + 1)
        out = []
        for h in range(start, min(tip, start + limit - 1) + 1):
            header = store.header(h)
            if header is None:
                break
            out.append({"height": h, "hash": header.hash.hex(), "tx_count": header.tx_count,
                        "time_ms": header.time_ms, "proposer": header.proposer.hex()})
        return JSON({"tip": tip, "blocks": out})

    async def status(self, request: Request) -> Response:
        return JSON(self.node.status())

    async def evidence(self, request: Request) -> Response:
        return JSON({"evidence": list(self.node.counters.evidence_log)})

    async def metrics(self, request: Request) -> Response:
        assert self.node.metrics is not None
        return Response(self.node.metrics.render(), media_type=METRICS_CONTENT_TYPE)

    # -- raw state (for remote readers) ------------------------------------------------------
    async def state_get(self, request: Request) -> Response:
        key = _hex_arg(request.path_params["key"], "key", size=None)
        value = self.node.store.get(key)
        return JSON({"key": key.hex(), "value": None if value is None else value.hex()})

    async def state_scan(self, request: Request) -> Response:
        qp = request.query_params
        prefix = _hex_arg(qp.get("prefix", ""), "prefix", size=None)
        after = _hex_arg(qp["after"], "after", size=None) if qp.get("after") else None
        limit = _int_arg(request, "limit", 1000, maximum=10_000)

        def scan() -> dict[str, Any]:
            items: list[list[str]] = []
            for k, v in self.node.store.iter_prefix(prefix):
                if after is not None and k <= after:
                    continue
                if len(items) >= limit:
                    return {"items": items, "next": items[-1][0]}
                items.append([k.hex(), v.hex()])
            return {"items": items, "next": None}
        return await self._query(scan)

    # -- provenance ---------------------------------------------------------------------------
    async def _query(self, fn: Callable[[], Any]) -> Response:
        result = await trio.to_thread.run_sync(fn)
        return JSON(result)

    def _ident(self, request: Request) -> str:
        ident = request.path_params.get("ident") or request.query_params.get("id")
        if not ident:
            raise ApiError(400, "missing_id", "give the identifier in the path or as ?id=")
        return str(ident)

    async def part(self, request: Request) -> Response:
        from ledger.provenance import _query as q
        ident = self._ident(request)
        return await self._query(lambda: q.part_show(self.node.store, ident))

    async def bom(self, request: Request) -> Response:
        from ledger.provenance import _query as q
        ident = self._ident(request)
        return await self._query(lambda: q.bom(self.node.store, ident))

    async def trace(self, request: Request) -> Response:
        from ledger.provenance import _query as q
        ident = self._ident(request)
        direction = request.path_params["direction"]
        if direction == "back":
            return await self._query(lambda: q.trace_back(self.node.store, ident))
        if direction == "forward":
            return await self._query(lambda: q.trace_forward(self.node.store, ident))
        raise ApiError(404, "not_found", "trace direction must be back or forward")

    async def recall(self, request: Request) -> Response:
        from ledger.provenance import _query as q
        if request.method == "POST":
            try:
                doc = orjson.loads(await self._body(request))
            except ValueError as exc:
                raise ApiError(400, "bad_json", "the body is not JSON") from exc
            ids = doc.get("ids") if isinstance(doc, dict) else None
        else:
            ids = request.query_params.getlist("id")
        if not ids or not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ApiError(400, "missing_id", 'give identifiers as ?id=...&id=... or '
                           '{"ids": [...]}')
        return await self._query(lambda: q.recall(self.node.store, ids))

    async def passport(self, request: Request) -> Response:
        from ledger.provenance import _query as q
        ident = self._ident(request)
        as_org = request.query_params.get("as")
        return await self._query(lambda: q.passport_show(self.node.store, ident, as_org=as_org))

    async def events(self, request: Request) -> Response:
        from ledger.provenance import _query as q
        qp = request.query_params
        limit = _int_arg(request, "limit", 1000, maximum=10_000)
        return await self._query(lambda: q.events(
            self.node.store, match_any_epc=qp.getlist("MATCH_anyEPC"),
            eq_biz_step=qp.getlist("EQ_bizStep"), ge_event_time=qp.get("GE_eventTime"),
            lt_event_time=qp.get("LT_eventTime"), eq_biz_location=qp.getlist("EQ_bizLocation"),
            event_type=qp.getlist("eventType"), limit=limit))

    async def openapi(self, request: Request) -> Response:
        return JSON(openapi_document(self.node))


# (method, path, handler name, write?, summary, tag)
ROUTES: list[tuple[str, str, str, bool, str, str]] = [
    ("GET", "/v1/status", "status", False, "node status: height, round, peers, validators, "
     "sync, tip hash, state root", "node"),
    ("POST", "/v1/txs", "submit", True, "submit one transaction ({\"tx\": hex}) or a batch "
     "({\"txs\": [hex, ...]}); msgpack bodies accepted", "transactions"),
    ("POST", "/v1/txs/status", "tx_statuses", False, "status of many transactions "
     "({\"tx_ids\": [hex, ...], \"wait_ms\": N} waits until none is pending)",
     "transactions"),
    ("GET", "/v1/txs/{tx_id}", "tx_status", False, "transaction status: pending, committed at "
     "height H, or rejected with a reason; ?wait_ms= long-polls until it is decided",
     "transactions"),
    ("GET", "/v1/txs/{tx_id}/proof", "tx_proof", False, "inclusion proof bundle (Merkle path, "
     "header, seal) of a committed transaction", "transactions"),
    ("GET", "/v1/nonce/{signer}", "nonce", False, "the next nonce for a signer, counting its "
     "pending transactions", "transactions"),
    ("GET", "/v1/blocks", "blocks", False, "recent block summaries (?from=H&limit=N)", "chain"),
    ("GET", "/v1/blocks/{height}", "block", False, "a block with its header, transactions and "
     "seal (height or 'latest'; ?format=msgpack for the canonical bytes)", "chain"),
    ("GET", "/v1/chain/records", "chain_records", False, "blocks with seals as canonical "
     "msgpack [[height, block, seal], ...] from ?from=H (?limit=N), for audit replay", "chain"),
    ("GET", "/v1/evidence", "evidence", False, "equivocation evidence seen by this node", "node"),
    ("GET", "/v1/parts", "part", False, "current state of the part or lot ?id=", "provenance"),
    ("GET", "/v1/parts/{ident:path}", "part", False, "current state of a part or lot",
     "provenance"),
    ("GET", "/v1/bom/{ident:path}", "bom", False, "bill of materials as built", "provenance"),
    ("GET", "/v1/trace/{direction}/{ident:path}", "trace", False, "trace back (to raw "
     "materials) or forward (where-used)", "provenance"),
    ("GET", "/v1/recall", "recall", False, "recall scope of ?id=...&id=...", "provenance"),
    ("POST", "/v1/recall", "recall", False, "recall scope of {\"ids\": [...]}", "provenance"),
    ("GET", "/v1/passports/{ident:path}", "passport", False, "a material passport by id or "
     "subject (?as=ORG for the tier view)", "provenance"),
    ("GET", "/v1/events", "events", False, "EPCIS events (MATCH_anyEPC, EQ_bizStep, "
     "GE_eventTime, LT_eventTime, EQ_bizLocation, eventType)", "provenance"),
    ("GET", "/v1/state/{key}", "state_get", False, "one raw state value (hex key)", "state"),
    ("GET", "/v1/state", "state_scan", False, "raw state entries under ?prefix= (hex), "
     "paged with ?after=&limit=", "state"),
    ("GET", "/metrics", "metrics", False, "Prometheus metrics", "node"),
    ("GET", "/openapi.json", "openapi", False, "this description", "node"),
]


def openapi_document(node: Node | None = None) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for method, path, _name, write, summary, tag in ROUTES:
        clean = path.replace(":path", "")
        params = [{"name": p.strip("{}").split(":")[0], "in": "path", "required": True,
                   "schema": {"type": "string"}}
                  for p in path.split("/") if p.startswith("{")]
        op: dict[str, Any] = {"summary": summary, "tags": [tag], "parameters": params,
                              "responses": {"200": {"description": "ok"},
                                            "400": {"description": "bad request (error, code)"},
                                            "404": {"description": "not found"}}}
        if write:
            op["security"] = [{"bearer": []}]
            op["responses"]["202"] = {"description": "accepted into the mempool"}
            op["responses"]["401"] = {"description": "token required (beyond loopback)"}
            op["responses"]["413"] = {"description": "body or batch too large"}
        paths.setdefault(clean, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "partledger node API", "version": API_VERSION,
                 "description": "Submit transactions and query a partledger node. Bytes are "
                                "lowercase hex. See docs/api.md."},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    }


def build_app(node: Node) -> Starlette:
    api = Api(node)
    routes = [Route(path, api.wrap(getattr(api, name), write=write), methods=[method])
              for method, path, name, write, _summary, _tag in ROUTES]
    return Starlette(routes=routes, exception_handlers={404: _no_route, 405: _no_route})


async def _no_route(request: Request, exc: Exception) -> Response:
    """Unknown paths and methods answer in the API's error shape, like every other error."""
    status = getattr(exc, "status_code", 404)
    if status == 405:
        return JSON({"error": f"{request.method} is not allowed on {request.url.path}",
                     "code": "method_not_allowed"}, status_code=405)
    return JSON({"error": f"no such endpoint: {request.method} {request.url.path} (see "
                 "GET /openapi.json)", "code": "no_route"}, status_code=404)


async def serve_api(node: Node, *, task_status: Any = trio.TASK_STATUS_IGNORED
                    ) -> None:
    """Serve the node's API until cancelled; reports the URL it listens on."""
    from hypercorn.config import Config
    from hypercorn.trio import serve

    cfg = Config()
    cfg.bind = [node.config.api.listen]
    cfg.accesslog = None
    cfg.errorlog = None
    cfg.graceful_timeout = 1
    cfg.keep_alive_timeout = 30

    class _Status:
        def started(self, urls: list[str] | None = None) -> None:
            url = (urls or [f"http://{node.config.api.listen}"])[0]
            task_status.started(url.rstrip("/"))

    await serve(build_app(node), cfg, task_status=_Status())  # type: ignore[arg-type]
