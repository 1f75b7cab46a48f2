"""`partledger keys`: create and inspect Ed25519 key files."""

from __future__ import annotations

import os
from pathlib import Path

import click

from cli._output import EXIT_USAGE, emit, fail
from ledger import SigningKey, key_file_info, read_key_file, write_key_file
from ledger.errors import ConfigError


def passphrase_from_env(var: str | None) -> bytes | None:
    """The passphrase held in environment variable `var` (never on the command line)."""
    if var is None:
        return None
    value = os.environ.get(var)
    if value is None:
        raise ConfigError(f"environment variable {var} is not set", code="passphrase_missing")
    if not value:
        raise ConfigError(f"environment variable {var} is empty", code="passphrase_empty")
    return value.encode()


@click.group()
def keys() -> None:
    """create and inspect key files (organisation and node keys).

    \b
    example:
      partledger keys new --out org.key
      PASS=secret partledger keys new --out node.key --passphrase-env PASS
      partledger keys show org.key --json
    """


@keys.command("new")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="key file to create (refuses to overwrite)")
@click.option("--passphrase-env", "passphrase_env", metavar="VAR",
              help="encrypt the key with the passphrase in environment variable VAR")
@click.option("--label", default="", help="free-text label stored in the file (e.g. org, node)")
@click.option("--json", "json_mode", is_flag=True, help="print one JSON document")
def new(out: Path, passphrase_env: str | None, label: str, json_mode: bool) -> None:
    """generate a new Ed25519 key and write it to a key file (mode 0600).

    example: partledger keys new --out keys/org.key --label org
    """
    passphrase = passphrase_from_env(passphrase_env)
    if not out.parent.is_dir():
        fail(f"directory {out.parent} does not exist", code=EXIT_USAGE, json_mode=json_mode)
    key = SigningKey.generate()
    write_key_file(out, key, passphrase=passphrase, label=label)
    emit({"ok": True, "path": str(out), "public_key": key.public.hex(),
          "encrypted": passphrase is not None}, json_mode,
         lambda d: click.echo(f"wrote {d['path']}\npublic key {d['public_key']}"))


@keys.command("show")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--passphrase-env", "passphrase_env", metavar="VAR",
              help="also decrypt the key (checks the passphrase and the key's integrity)")
@click.option("--json", "json_mode", is_flag=True, help="print one JSON document")
def show(file: Path, passphrase_env: str | None, json_mode: bool) -> None:
    """show a key file's public key (no passphrase needed).

    example: partledger keys show keys/node.key --json
    """
    info = key_file_info(file)
    checked = False
    if passphrase_env is not None or not info.encrypted:
        read_key_file(file, passphrase=passphrase_from_env(passphrase_env))
        checked = True
    emit({"ok": True, "path": str(file), "public_key": info.public_key.hex(),
          "encrypted": info.encrypted, "label": info.label, "secret_checked": checked},
         json_mode,
         lambda d: click.echo(f"{d['path']}: public key {d['public_key']}"
                              f"{' (encrypted)' if d['encrypted'] else ''}"))
