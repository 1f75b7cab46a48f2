"""Key files: mode 0600, optional passphrase, and clear refusals."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from ledger import SigningKey, key_file_info, read_key_file, write_key_file
from ledger.errors import ConfigError


def test_key_file_plain_roundtrip_mode_0600(tmp_path: Path) -> None:
    k = SigningKey.generate()
    p = tmp_path / "org.key"
    old = os.umask(0)
    try:
        write_key_file(p, k, label="org")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    assert read_key_file(p) == k
    info = key_file_info(p)
    assert info.public_key == k.public and not info.encrypted and info.label == "org"
    with pytest.raises(ConfigError) as e:
        write_key_file(p, SigningKey.generate())
    assert e.value.code == "key_file_exists"
    assert read_key_file(p) == k  # unchanged


def test_key_file_passphrase(tmp_path: Path) -> None:
    k = SigningKey.generate()
    p = tmp_path / "node.key"
    write_key_file(p, k, passphrase=b"s3cret")
    text = p.read_text()
    assert k.seed.hex() not in text
    assert key_file_info(p).encrypted and key_file_info(p).public_key == k.public
    with pytest.raises(ConfigError) as e:
        read_key_file(p)
    assert e.value.code == "passphrase_required"
    with pytest.raises(ConfigError) as e:
        read_key_file(p, passphrase=b"wrong")
    assert e.value.code == "passphrase_wrong"
    assert read_key_file(p, passphrase=b"s3cret") == k
    # a ciphertext byte changed: refused as wrong passphrase or damage, never a wrong key
    doc = json.loads(text)
    ct = bytearray(bytes.fromhex(doc["ciphertext"]))
    ct[-1] ^= 1
    doc["ciphertext"] = ct.hex()
    p.chmod(0o600)
    p.write_text(json.dumps(doc))
    with pytest.raises(ConfigError):
        read_key_file(p, passphrase=b"s3cret")


@pytest.mark.parametrize("edit", ["mode", "pub", "format", "json", "missing", "both"])
def test_key_file_refusals(tmp_path: Path, edit: str) -> None:
    k = SigningKey.generate()
    p = tmp_path / "k.key"
    write_key_file(p, k)
    doc = json.loads(p.read_text())
    if edit == "mode":
        p.chmod(0o644)
    elif edit == "pub":
        doc["public_key"] = SigningKey.generate().public.hex()
        p.write_text(json.dumps(doc))
    elif edit == "format":
        doc["format"] = 7
        p.write_text(json.dumps(doc))
    elif edit == "json":
        p.write_text("{nope")
    elif edit == "missing":
        p.unlink()
    else:
        doc["ciphertext"] = "00"
        p.write_text(json.dumps(doc))
    with pytest.raises(ConfigError) as e:
        read_key_file(p)
    assert e.value.code == {"mode": "key_file_permissions", "pub": "key_file_mismatch",
                            "format": "key_file_version", "json": "key_file_invalid",
                            "missing": "key_file_missing", "both": "key_file_invalid"}[edit]
