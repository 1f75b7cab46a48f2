"""The one exception hierarchy of partledger.

```
PartledgerError                    every error we raise on purpose; carries a machine-readable code
├── DecodeError                    bytes that are not canonical, or not the structure expected
│   └── UnknownVersionError        a structure whose format version we do not know
├── VerificationError              a hash, signature, proof or seal that does not check out
├── ValidationError                a well-formed transaction that breaks a ledger rule
├── StoreError                     a data directory that is missing, inconsistent or of another chain
└── ConfigError                    a genesis file, key file or configuration that cannot be used
```

Peer bytes are decoded at one boundary per entry point; what fails there is a `DecodeError`,
never a `KeyError` or a `TypeError` from deep inside.
"""

from __future__ import annotations


class PartledgerError(Exception):
    """Base of every deliberate error; `code` is stable for programs, the message is for people."""

    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class DecodeError(PartledgerError):
    code = "decode"


class UnknownVersionError(DecodeError):
    code = "unknown_version"


class VerificationError(PartledgerError):
    code = "verification"


class ValidationError(PartledgerError):
    code = "validation"


class StoreError(PartledgerError):
    code = "store"


class ConfigError(PartledgerError):
    code = "config"
