"""Keep py-libp2p's logging out of the operator's way.

At import, py-libp2p clears the handlers of its `libp2p` logger, sets WARNING and turns
propagation off, so its messages reach stderr through Python's last-resort handler: multi-line
"Failed to open stream" errors, four warnings per refused dial, and so on. We route it into the
process's own logging (propagate to our handlers) at a level of our choosing, ERROR by default,
so that a node's logs stay structured and quiet.
"""

from __future__ import annotations

import logging

import libp2p  # noqa: F401 - importing it runs its logging setup, which we then override

LIBP2P_LOGGER = "libp2p"
_routed = False


def route_libp2p_logging(level: int | str | None = None) -> None:
    """Send libp2p's records to the root logger's handlers, keeping those at `level` or above.

    `level=None` (what `open_host` passes) keeps a level chosen by an earlier call (the node's
    configuration), and uses ERROR the first time."""
    global _routed
    if level is None:
        if _routed:
            return
        level = logging.ERROR
    _routed = True
    logger = logging.getLogger(LIBP2P_LOGGER)
    logger.handlers.clear()
    logger.setLevel(level)
    logger.propagate = True
    # Some of its modules set their own levels (e.g. the auto-connector logs at INFO).
    for name in list(logging.root.manager.loggerDict):
        if name.startswith(LIBP2P_LOGGER + "."):
            child = logging.getLogger(name)
            child.handlers.clear()
            child.setLevel(logging.NOTSET)
            child.propagate = True
