"""`partledger completion SHELL`: print the shell completion script (click's own)."""

from __future__ import annotations

import click


@click.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """print the completion script for SHELL.

    \b
    example:
      eval "$(partledger completion bash)"        # add to ~/.bashrc
      partledger completion fish > ~/.config/fish/completions/partledger.fish
    """
    from click.shell_completion import get_completion_class

    from cli.main import app

    cls = get_completion_class(shell)
    if cls is None:  # pragma: no cover - Choice restricts it
        raise click.UsageError(f"unsupported shell {shell}")
    click.echo(cls(app, {}, "partledger", "_PARTLEDGER_COMPLETE").source())
