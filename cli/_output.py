"""Output and error conventions shared by every command.

`emit(data, json_mode, render)` prints one JSON document or a human rendering; `fail(...)` ends
a command with a one-sentence error and the agreed exit code. Partledger errors never reach the
user as a traceback: they become exit codes (1 for verification and validation
failures, 2 for usage and configuration errors); `cli.main.LazyGroup.invoke` applies it to every
command.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from ledger.errors import (
    ConfigError,
    DecodeError,
    PartledgerError,
    StoreError,
    ValidationError,
    VerificationError,
)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def _default(o: Any) -> Any:
    if isinstance(o, bytes | bytearray):
        return bytes(o).hex()
    if isinstance(o, set | frozenset | tuple):
        return list(o)
    raise TypeError(f"cannot serialise {type(o).__name__}")


def dump_json(data: Any) -> str:
    return json.dumps(data, default=_default, sort_keys=True)


def emit(data: Any, json_mode: bool, render: Callable[[Any], None] | None = None) -> None:
    """Print `data` as one JSON document (json_mode) or through `render` for people."""
    if json_mode or render is None:
        click.echo(dump_json(data))
    else:
        render(data)


def fail(message: str, *, code: int = EXIT_FAILURE, json_mode: bool = False,
         data: dict[str, Any] | None = None) -> NoReturn:
    """End the command: the JSON document (if asked) on stdout, the sentence on stderr."""
    if json_mode:
        click.echo(dump_json({"ok": False, "error": message, **(data or {})}))
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def exit_code_for(exc: PartledgerError) -> int:
    if isinstance(exc, VerificationError | ValidationError | DecodeError | StoreError):
        return EXIT_FAILURE
    if isinstance(exc, ConfigError):
        return EXIT_USAGE
    return EXIT_FAILURE
