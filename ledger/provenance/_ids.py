"""GS1 identifiers: EPC URNs and GS1 Digital Link URIs mapped to one ledger key.

Integrators write the same object either as an EPC URN (`urn:epc:id:sgtin:4012345.011111.987`)
or as a Digital Link URI (`https://id.gs1.org/01/04012345111118/21/987`). Both must land on the
same state key, or a trace would split one physical part into two. The key is the Digital Link
path in element-string order with percent-escapes removed (`01/04012345111118/21/987`); anything
we cannot convert (other URN schemes, private URIs) is keyed by its own text. Outputs show the
identifier as first recorded, kept in the object's state record.

The company-prefix rule needs no GS1 prefix-length table: for every key kind the GS1 company
prefix is a leading substring of `company_digits(key)`, so a claim is a `startswith` test.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import unquote as _unquote

# Digital Link primary keys we convert, and the qualifiers that may follow them (in order).
_DL_PRIMARY = {"01", "00", "414", "8003", "8004", "417", "253", "8010", "8017", "8018"}
_DL_QUALIFIERS = {"01": ("22", "10", "21"), "414": ("254",)}


@lru_cache(maxsize=16384)
def gs1_check_digit(digits: str) -> str:
    """Mod-10 check digit of a GS1 key body (weights 3,1,3,… from the right).

    Cached: every serial of one product shares its GTIN body, so most calls repeat one.
    """
    r = digits[::-1]
    return str(-(3 * sum(map(int, r[0::2])) + sum(map(int, r[1::2]))) % 10)


def unquote(s: str) -> str:
    """Percent-escapes removed (`urllib.parse.unquote`, skipped for the usual text without
    any)."""
    return s if "%" not in s else _unquote(s)


def _digits(s: str) -> bool:
    return s.isascii() and s.isdigit()


def _lead_split(cp: str, ref: str, total: int) -> bool:
    """A company prefix and a reference that starts with the indicator/extension digit.

    The reference must hold that digit: a 13-digit "company prefix" with an empty reference
    (`sgtin:4012345077889..1`) is not a GS1 key (prefixes have at most 12 digits), so such a
    URN is keyed by its own text rather than rearranged.
    """
    return bool(ref) and _digits(cp + ref) and len(cp + ref) == total


def _epc_urn_key(uri: str) -> str | None:
    parts = uri.split(":")
    if len(parts) != 5 or parts[0] != "urn" or parts[1] != "epc":
        return None
    space, scheme, rest = parts[2], parts[3], parts[4]
    fields = rest.split(".")
    if space == "id":
        if scheme == "sgtin" and len(fields) == 3:
            cp, iir, ser = fields
            if _lead_split(cp, iir, 13):
                body = iir[0] + cp + iir[1:]
                return f"01/{body}{gs1_check_digit(body)}/21/{unquote(ser)}"
        elif scheme == "sscc" and len(fields) == 2:
            cp, sr = fields
            if _lead_split(cp, sr, 17):
                body = sr[0] + cp + sr[1:]
                return f"00/{body}{gs1_check_digit(body)}"
        elif scheme == "sgln" and len(fields) == 3:
            cp, lr, ext = fields
            if _digits(cp + lr) and len(cp + lr) == 12:
                gln = cp + lr + gs1_check_digit(cp + lr)
                return f"414/{gln}" if ext == "0" else f"414/{gln}/254/{unquote(ext)}"
        elif scheme == "pgln" and len(fields) == 2:
            cp, pr = fields
            if _digits(cp + pr) and len(cp + pr) == 12:
                return f"417/{cp + pr}{gs1_check_digit(cp + pr)}"
        elif scheme == "grai" and len(fields) == 3:
            cp, at, ser = fields
            if _digits(cp + at) and len(cp + at) == 12:
                body = cp + at
                return f"8003/0{body}{gs1_check_digit(body)}{unquote(ser)}"
        elif scheme == "giai" and len(fields) == 2:
            cp, ar = fields
            if _digits(cp):
                return f"8004/{cp}{unquote(ar)}"
        elif scheme == "gdti" and len(fields) == 3:
            cp, dt, ser = fields
            if _digits(cp + dt) and len(cp + dt) == 12:
                body = cp + dt
                return f"253/{body}{gs1_check_digit(body)}{unquote(ser)}"
    elif space == "class" and scheme == "lgtin" and len(fields) == 3:
        cp, iir, lot = fields
        if _lead_split(cp, iir, 13):
            body = iir[0] + cp + iir[1:]
            return f"01/{body}{gs1_check_digit(body)}/10/{unquote(lot)}"
    elif space == "idpat" and scheme == "sgtin" and len(fields) == 3 and fields[2] == "*":
        cp, iir = fields[0], fields[1]
        if _lead_split(cp, iir, 13):
            body = iir[0] + cp + iir[1:]
            return f"01/{body}{gs1_check_digit(body)}"
    return None


def _dl_key(uri: str) -> str | None:
    scheme_end = uri.find("://")
    if scheme_end < 0 or uri[:scheme_end].lower() not in ("http", "https"):
        return None
    path_start = uri.find("/", scheme_end + 3)
    if path_start < 0:
        return None
    path = uri[path_start + 1:].split("?", 1)[0].split("#", 1)[0]
    segs = path.split("/")
    for i, seg in enumerate(segs):
        if seg in _DL_PRIMARY and i + 1 < len(segs) and segs[i + 1]:
            value = unquote(segs[i + 1])
            if seg == "01":
                if not _digits(value) or len(value) not in (8, 12, 13, 14):
                    return None
                value = value.zfill(14)
            rest = segs[i + 2:]
            if len(rest) % 2:
                return None
            quals = dict(zip(rest[0::2], (unquote(v) for v in rest[1::2]), strict=True))
            allowed = _DL_QUALIFIERS.get(seg, ())
            if any(q not in allowed for q in quals):
                return None
            key = f"{seg}/{value}"
            if seg == "01":
                # cpv (22) is part of the item key but serial/lot decide its kind
                if "22" in quals:
                    key += f"/22/{quals['22']}"
                if "21" in quals:
                    return key + f"/21/{quals['21']}"
                if "10" in quals:
                    return key + f"/10/{quals['10']}"
                return key
            if seg == "414" and "254" in quals and quals["254"] != "0":
                return key + f"/254/{quals['254']}"
            return key
    return None


@lru_cache(maxsize=65536)
def id_key(uri: str) -> str:
    """The ledger key of an identifier: its Digital Link path where convertible, else itself."""
    if uri.startswith("urn:epc:"):
        k = _epc_urn_key(uri)
        if k is not None:
            return k
    elif uri.startswith(("http://", "https://")):
        k = _dl_key(uri)
        if k is not None:
            return k
    return uri


def is_class_key(key: str) -> bool:
    """True for a product class or lot (quantities), False for a serialised instance."""
    if key.startswith("01/"):
        return "/21/" not in key
    return key.startswith("urn:epc:class:") or key.startswith("urn:epc:idpat:")


def company_digits(key: str) -> str | None:
    """Digits that start with the GS1 company prefix of the identifier (None if not GS1)."""
    ai, _, rest = key.partition("/")
    value = rest.split("/", 1)[0]
    if not _digits(value[:1]):
        return None
    if ai in ("01", "00"):       # indicator / extension digit first
        return value[1:]
    if ai == "8003":             # leading 0, then the GRAI body
        return value[1:]
    if ai in ("414", "417", "8004", "253", "8010", "8017", "8018"):
        return value
    return None


def to_digital_link(key: str) -> str | None:
    """A Digital Link URI for a converted key (None for keys kept verbatim)."""
    ai = key.split("/", 1)[0]
    if ai in _DL_PRIMARY:
        return "https://id.gs1.org/" + key
    return None
