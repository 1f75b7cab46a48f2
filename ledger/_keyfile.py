"""Key files: one Ed25519 key per JSON file, mode 0600, optionally sealed with a passphrase.

Format 1::

    {"format": 1, "type": "ed25519", "public_key": "<64 hex>", "label": "org",
     "secret": "<64 hex seed>"}                                            # plain
    {"format": 1, "type": "ed25519", "public_key": "<64 hex>", "label": "org",
     "kdf": {"name": "argon2id", "salt": "<32 hex>", "opslimit": 2, "memlimit": 67108864},
     "ciphertext": "<hex of SecretBox(nonce ‖ box)>"}                       # encrypted

The public key is stored in clear so `keys show` and genesis tooling work without the
passphrase; after decrypting, the seed must give that same public key (a swapped or edited file
is refused). Encryption: libsodium's argon2id password hash derives a SecretBox key.
Files are created with O_EXCL and mode 0600 and fsynced; reading refuses a key file that other
users can read, as ssh does.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils

from ledger._crypto import SigningKey
from ledger.errors import ConfigError

KEYFILE_FORMAT = 1
OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE
_MAX_KEYFILE_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class KeyFileInfo:
    """What a key file says without its passphrase."""

    path: Path
    public_key: bytes
    encrypted: bool
    label: str


def write_key_file(path: str | Path, key: SigningKey, *, passphrase: bytes | None = None,
                   label: str = "", overwrite: bool = False) -> None:
    """Write `key` to a new file (mode 0600, fsynced).

    Raises:
        ConfigError: the file exists (unless `overwrite`), or cannot be written.
    """
    p = Path(path)
    doc: dict[str, Any] = {"format": KEYFILE_FORMAT, "type": "ed25519",
                           "public_key": key.public.hex(), "label": label}
    if passphrase is None:
        doc["secret"] = key.seed.hex()
    else:
        if not passphrase:
            raise ConfigError("the passphrase is empty", code="passphrase_empty")
        salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
        box = nacl.secret.SecretBox(_derive(passphrase, salt, OPSLIMIT, MEMLIMIT))
        doc["kdf"] = {"name": "argon2id", "salt": salt.hex(), "opslimit": OPSLIMIT,
                      "memlimit": MEMLIMIT}
        doc["ciphertext"] = bytes(box.encrypt(key.seed)).hex()
    data = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    if overwrite and p.exists():
        p.unlink()
    try:
        fd = os.open(p, flags, 0o600)
    except FileExistsError as exc:
        raise ConfigError(f"key file {p} already exists; refusing to overwrite a key",
                          code="key_file_exists") from exc
    except OSError as exc:
        raise ConfigError(f"cannot create key file {p}: {exc.strerror}",
                          code="key_file_io") from exc
    try:
        os.fchmod(fd, 0o600)  # a umask cannot have widened it, but be explicit
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(p.parent)


def fsync_dir(d: Path) -> None:
    """Make a rename or create in `d` durable (best effort where directories cannot be opened)."""
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _derive(passphrase: bytes, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    key: bytes = nacl.pwhash.argon2id.kdf(nacl.secret.SecretBox.KEY_SIZE, passphrase, salt,
                                          opslimit=opslimit, memlimit=memlimit)
    return key


def _load_doc(path: str | Path) -> tuple[Path, dict[str, Any]]:
    p = Path(path)
    try:
        st = os.stat(p)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"key file {p} is not a regular file", code="key_file_invalid")
        if st.st_size > _MAX_KEYFILE_BYTES:
            raise ConfigError(f"key file {p} is too large to be a key file",
                              code="key_file_invalid")
        data = p.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(f"key file {p} does not exist", code="key_file_missing") from exc
    except PermissionError as exc:
        raise ConfigError(f"key file {p} is not readable by this user",
                          code="key_file_io") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read key file {p}: {exc.strerror}", code="key_file_io") from exc
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"key file {p} is not JSON", code="key_file_invalid") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"key file {p} is not a JSON object", code="key_file_invalid")
    if doc.get("format") != KEYFILE_FORMAT:
        raise ConfigError(f"key file {p} has format {doc.get('format')!r}, expected "
                          f"{KEYFILE_FORMAT}", code="key_file_version")
    if doc.get("type") != "ed25519":
        raise ConfigError(f"key file {p}: key type {doc.get('type')!r} is not ed25519",
                          code="key_file_invalid")
    return p, doc


def _hexfield(p: Path, doc: dict[str, Any], name: str, size: int | None) -> bytes:
    v = doc.get(name)
    try:
        if not isinstance(v, str):
            raise ValueError
        b = bytes.fromhex(v)
    except ValueError as exc:
        raise ConfigError(f"key file {p}: {name} is missing or not hex",
                          code="key_file_invalid") from exc
    if size is not None and len(b) != size:
        raise ConfigError(f"key file {p}: {name} must be {size} bytes", code="key_file_invalid")
    return b


def key_file_info(path: str | Path) -> KeyFileInfo:
    """Public facts of a key file (no passphrase needed).

    Raises:
        ConfigError: missing, unreadable or malformed.
    """
    p, doc = _load_doc(path)
    pub = _hexfield(p, doc, "public_key", 32)
    encrypted = "ciphertext" in doc
    if encrypted == ("secret" in doc):
        raise ConfigError(f"key file {p} must hold exactly one of secret and ciphertext",
                          code="key_file_invalid")
    label = doc.get("label", "")
    return KeyFileInfo(p, pub, encrypted, label if isinstance(label, str) else "")


def read_key_file(path: str | Path, *, passphrase: bytes | None = None) -> SigningKey:
    """Load the private key of a key file.

    Raises:
        ConfigError: missing, readable by others, malformed, passphrase needed or wrong, or the
        secret does not match the recorded public key.
    """
    info = key_file_info(path)
    p = info.path
    mode = os.stat(p).st_mode
    if mode & 0o077:
        raise ConfigError(f"key file {p} is accessible by other users (mode "
                          f"{stat.S_IMODE(mode):04o}); run `chmod 600 {p}`",
                          code="key_file_permissions")
    _, doc = _load_doc(p)
    if not info.encrypted:
        seed = _hexfield(p, doc, "secret", 32)
    else:
        if passphrase is None:
            raise ConfigError(f"key file {p} is encrypted: a passphrase is required "
                              "(--passphrase-env VAR)", code="passphrase_required")
        kdf = doc.get("kdf")
        if (not isinstance(kdf, dict) or kdf.get("name") != "argon2id"
                or not isinstance(kdf.get("opslimit"), int)
                or not isinstance(kdf.get("memlimit"), int)
                or not 1 <= kdf["opslimit"] <= 16 or not 8192 <= kdf["memlimit"] <= 2**30):
            raise ConfigError(f"key file {p}: kdf must be argon2id with sane opslimit and memlimit",
                              code="key_file_invalid")
        salt = _hexfield(p, kdf, "salt", nacl.pwhash.argon2id.SALTBYTES)
        ct = _hexfield(p, doc, "ciphertext", None)
        try:
            box = nacl.secret.SecretBox(_derive(passphrase, salt, kdf["opslimit"],
                                                kdf["memlimit"]))
            seed = bytes(box.decrypt(ct))
        except nacl.exceptions.CryptoError as exc:
            raise ConfigError(f"key file {p}: wrong passphrase (or the file is damaged)",
                              code="passphrase_wrong") from exc
        except (ValueError, TypeError, nacl.exceptions.RuntimeError) as exc:
            raise ConfigError(f"key file {p}: unusable kdf parameters or ciphertext",
                              code="key_file_invalid") from exc
        if len(seed) != 32:
            raise ConfigError(f"key file {p}: decrypted secret has the wrong size",
                              code="key_file_invalid")
    key = SigningKey(seed)
    if key.public != info.public_key:
        raise ConfigError(f"key file {p}: the secret does not match its public_key",
                          code="key_file_mismatch")
    return key
