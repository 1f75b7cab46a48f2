"""The portable export file: a whole chain in one file an auditor can replay anywhere.

Layout::

    MAGIC (8 bytes: b"PLEXPORT")
    record*                       each: u32 big-endian length ‖ canonical msgpack map
      header   {v: 1, type: "header", chain: <32 bytes>, blocks: N}
      block    {type: "block", height: h, block: <block bytes>, seal: <seal bytes>}   (h = 1..N)
      trailer  {type: "trailer", count: N, sha256: <SHA-256 of every byte before this record's
                length prefix>}
    end of file

Every byte is covered: block and seal bytes by their hashes and signatures (checked by replay),
the framing by the length prefixes and canonical decoding, record fields by cross-checks (height
order, header count = trailer count), and the whole file by the trailer hash, so a flipped,
inserted or truncated byte anywhere makes reading fail. Written to a temporary file, fsynced, then
renamed, so a crash never leaves a half-written export under the final name.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ledger._block import MAX_BLOCK_BYTES
from ledger._codec import decode, encode
from ledger._keyfile import fsync_dir
from ledger._store import Store
from ledger.errors import DecodeError, PartledgerError, StoreError

MAGIC = b"PLEXPORT"
EXPORT_VERSION = 1
MAX_RECORD_BYTES = MAX_BLOCK_BYTES + 2 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ExportSummary:
    path: Path
    chain_id: bytes
    blocks: int
    size: int
    sha256: bytes


def _record(out: BinaryIO, h: Any, m: dict[str, Any]) -> None:
    data = encode(m)
    frame = struct.pack(">I", len(data)) + data
    h.update(frame)
    out.write(frame)


def export_chain(store: Store, out_path: str | Path) -> ExportSummary:
    """Write the chain of `store` (heights 1..tip) to `out_path` atomically.

    Raises:
        StoreError: a block or seal is missing or unreadable.
        PartledgerError: the output cannot be written (code export_io).
    """
    p = Path(out_path)
    n = store.height
    tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
    h = hashlib.sha256()
    try:
        with open(tmp, "wb") as out:
            out.write(MAGIC)
            h.update(MAGIC)
            _record(out, h, {"v": EXPORT_VERSION, "type": "header", "chain": store.chain_id,
                             "blocks": n})
            for height in range(1, n + 1):
                b, s = store.block_raw(height), store.seal_raw(height)
                if b is None or s is None:
                    raise StoreError(f"store lacks block or seal {height}",
                                     code="store_inconsistent")
                _record(out, h, {"type": "block", "height": height, "block": b, "seal": s})
            digest = h.digest()
            _record(out, hashlib.sha256(), {"type": "trailer", "count": n, "sha256": digest})
            out.flush()
            os.fsync(out.fileno())
        size = tmp.stat().st_size
        os.replace(tmp, p)
        fsync_dir(p.parent)
    except OSError as exc:
        raise PartledgerError(f"cannot write export file {p}: {exc.strerror}",
                              code="export_io") from exc
    finally:
        if tmp.exists():
            tmp.unlink()
    return ExportSummary(p, store.chain_id, n, size, digest)


class ExportReader:
    """Streams an export file, checking the framing; `blocks()` ends by checking the trailer.

    Raises (from `open`/`blocks`): DecodeError with codes export_magic, export_framing,
    export_record, export_trailer, export_truncated; or PartledgerError export_io.
    """

    def __init__(self, f: BinaryIO, path: Path) -> None:
        self._f = f
        self.path = path
        self._h = hashlib.sha256()
        self.chain_id: bytes = b""
        self.count = 0
        self._last_frame = b""

    @classmethod
    def open(cls, path: str | Path) -> ExportReader:
        p = Path(path)
        try:
            f = open(p, "rb")  # noqa: SIM115 - closed by close()/blocks()
        except OSError as exc:
            raise PartledgerError(f"cannot read export file {p}: {exc.strerror}",
                                  code="export_io") from exc
        r = cls(f, p)
        try:
            r._read_header()
        except BaseException:
            f.close()
            raise
        return r

    def close(self) -> None:
        self._f.close()

    def _read_exact(self, n: int, what: str) -> bytes:
        data = self._f.read(n)
        if len(data) != n:
            raise DecodeError(f"export file ends inside {what} (truncated?)",
                              code="export_truncated")
        return data

    def _next(self, what: str) -> dict[str, Any]:
        prefix = self._read_exact(4, f"the length of {what}")
        (n,) = struct.unpack(">I", prefix)
        if not 0 < n <= MAX_RECORD_BYTES:
            raise DecodeError(f"export file: {what} has an impossible length {n}",
                              code="export_framing")
        data = self._read_exact(n, what)
        self._last_frame = prefix + data
        try:
            m = decode(data, max_bytes=MAX_RECORD_BYTES)
        except DecodeError as exc:
            raise DecodeError(f"export file: {what} is not canonical msgpack ({exc})",
                              code="export_record") from exc
        if not isinstance(m, dict) or not isinstance(m.get("type"), str):
            raise DecodeError(f"export file: {what} is not a record", code="export_record")
        return m

    def _read_header(self) -> None:
        magic = self._f.read(len(MAGIC))
        if magic != MAGIC:
            raise DecodeError(f"{self.path} is not a partledger export file (bad magic)",
                              code="export_magic")
        self._h.update(magic)
        m = self._next("the header")
        self._h.update(self._last_frame)
        if m.get("type") != "header" or set(m) != {"v", "type", "chain", "blocks"}:
            raise DecodeError("export file: the first record is not a header",
                              code="export_record")
        if m["v"] != EXPORT_VERSION:
            raise DecodeError(f"export file: format version {m['v']!r} is not supported",
                              code="unknown_version")
        if not isinstance(m["chain"], bytes) or len(m["chain"]) != 32:
            raise DecodeError("export file: header chain id must be 32 bytes",
                              code="export_record")
        if not isinstance(m["blocks"], int) or isinstance(m["blocks"], bool) or m["blocks"] < 0:
            raise DecodeError("export file: header block count is invalid", code="export_record")
        self.chain_id, self.count = m["chain"], m["blocks"]

    def blocks(self) -> Iterator[tuple[int, bytes, bytes]]:
        """(height, block bytes, seal bytes) for heights 1..count, then the trailer check."""
        try:
            for height in range(1, self.count + 1):
                m = self._next(f"record {height}")
                if (m.get("type") != "block" or set(m) != {"type", "height", "block", "seal"}
                        or m["height"] != height or not isinstance(m["block"], bytes)
                        or not isinstance(m["seal"], bytes)):
                    raise DecodeError(f"export file: record {height} is not block {height}",
                                      code="export_record")
                self._h.update(self._last_frame)
                yield height, m["block"], m["seal"]
            self._check_trailer()
        finally:
            self.close()

    def _check_trailer(self) -> None:
        m = self._next("the trailer")
        if m.get("type") != "trailer" or set(m) != {"type", "count", "sha256"}:
            raise DecodeError("export file: the trailer record is missing", code="export_trailer")
        if m["count"] != self.count:
            raise DecodeError(f"export file: trailer counts {m['count']!r} blocks, header "
                              f"{self.count}", code="export_trailer")
        if m["sha256"] != self._h.digest():
            raise DecodeError("export file: the trailer hash does not match the content",
                              code="export_trailer")
        if self._f.read(1):
            raise DecodeError("export file: bytes after the trailer", code="export_trailer")
