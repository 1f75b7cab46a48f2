"""`partledger`: the command-line program.

Subcommands live in their own modules (`cli/cmd_*.py`) and are imported only when run, so that
`partledger --help` stays fast. Conventions for every command: `--json` prints exactly one JSON
document on stdout and nothing else; exit codes are 0 ok, 1 verification or validation failure,
2 usage error; errors are one sentence on stderr, never a traceback.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

# command name -> "module:attribute"; each attribute is a click.Command or click.Group
COMMANDS: dict[str, str] = {
    "keys": "cli.cmd_keys:keys",
    "sim": "cli.cmd_sim:sim",
    "dev": "cli.cmd_dev:dev",
    "audit": "cli.cmd_audit:audit",
    "epcis": "cli.cmd_epcis:epcis",
    "trace": "cli.cmd_query:trace",
    "recall": "cli.cmd_query:recall",
    "part": "cli.cmd_query:part",
    "bom": "cli.cmd_query:bom",
    "passport": "cli.cmd_write:passport",
    "custody": "cli.cmd_write:custody",
    "attest": "cli.cmd_write:attest",
    "notice": "cli.cmd_write:notice",
    "events": "cli.cmd_query:events",
    "node": "cli.cmd_node:node",
    "devnet": "cli.cmd_devnet:devnet",
    "status": "cli.cmd_remote:status",
    "block": "cli.cmd_remote:block",
    "tx": "cli.cmd_remote:tx",
    "proof": "cli.cmd_proof:proof",
    "genesis": "cli.cmd_genesis:genesis",
    "completion": "cli.cmd_completion:completion",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        cmd: click.Command = getattr(importlib.import_module(module_name), attr)
        return cmd

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["partledger.json"] = "--json" in args
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        """Every command's deliberate errors end the same way, however it is invoked."""
        from cli._output import exit_code_for, fail
        from ledger.errors import PartledgerError

        try:
            return super().invoke(ctx)
        except PartledgerError as exc:
            fail(exc.message, code=exit_code_for(exc), json_mode=ctx.meta["partledger.json"],
                 data={"code": exc.code})


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="partledger")
def app() -> None:
    """partledger: a permissioned ledger of part provenance and material passports."""


def main(argv: list[str] | None = None) -> Any:
    return app.main(args=argv if argv is not None else sys.argv[1:], prog_name="partledger")


if __name__ == "__main__":
    main()
