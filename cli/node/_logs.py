"""Structured, quiet logging for a node process: one JSON object per line on stderr.

py-libp2p's own records are routed into the same handler at their own (higher) level, so an
operator sees one stream in one format.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from p2p import route_libp2p_logging


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, separators=(",", ":"))


def setup_logging(*, level: str = "info", fmt: str = "json", libp2p_level: str = "error") -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level.upper())
    route_libp2p_logging(libp2p_level.upper())
    for noisy in ("hypercorn", "hypercorn.error", "hypercorn.access", "multiaddr", "trio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
