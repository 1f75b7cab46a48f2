"""The node home directory: where each file of a node lives.

```
HOME/genesis.json         the consortium's genesis file
HOME/config.toml          node configuration (written by the node's init)
HOME/keys/org.key         organisation key (signs transactions), mode 0600
HOME/keys/node.key        node key (signs votes; libp2p identity), mode 0600
HOME/data/ledger/         LevelDB store (ledger._store)
HOME/data/consensus/      consensus persisted state
```
Directories are created with mode 0700. Only paths here: nothing in this module opens a store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ledger.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Home:
    root: Path

    @classmethod
    def at(cls, root: str | Path) -> Home:
        return cls(Path(root))

    @property
    def genesis_path(self) -> Path:
        return self.root / "genesis.json"

    @property
    def config_path(self) -> Path:
        return self.root / "config.toml"

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def org_key_path(self) -> Path:
        return self.keys_dir / "org.key"

    @property
    def node_key_path(self) -> Path:
        return self.keys_dir / "node.key"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def ledger_dir(self) -> Path:
        return self.data_dir / "ledger"

    @property
    def consensus_dir(self) -> Path:
        return self.data_dir / "consensus"

    def create_dirs(self) -> None:
        """Create the home's directories (mode 0700), keeping any that exist."""
        for d in (self.root, self.keys_dir, self.data_dir, self.consensus_dir):
            make_private_dir(d)

    def require(self) -> None:
        """Raise ConfigError unless this looks like a node home (it has a genesis file)."""
        if not self.root.is_dir():
            raise ConfigError(f"home directory {self.root} does not exist", code="home_missing")
        if not self.genesis_path.is_file():
            raise ConfigError(f"{self.root} is not a node home: {self.genesis_path.name} is "
                              "missing", code="home_invalid")


def make_private_dir(path: str | Path) -> None:
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(p, 0o700)
