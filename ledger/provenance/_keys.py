"""State key layout of the provenance application (inside the store's state family).

Records (the state proper)::

    org/<org>                 organisation {name, roles, key, active}
    agent/<pubkey>            agent {org, active}
    nonce/<pubkey>            last nonce used by the signer (int)
    meta/prefixes             {gs1 company prefix: org} claims
    meta/seq                  number of events recorded (int)
    obj/<idkey>               current state of an object (see _app.py)
    ev/<eventID>              an event as recorded {k, b, org, tx, h, t, seq, tm}
    ed/<eventID>              its error declaration, if any (history is never changed)
    es/<seq:8>                eventID of the seq-th event (ledger order)
    tf/<transformationID>     {in, out} keys of all events sharing a transformationID
    cp/<proposalId>           custody/ownership proposal
    pp/<passportId>           passport (current version);  ph/<passportId>\\0<ver:4> history
    at/<certId>               attestation;  qn/<noticeId> quality notice

Genealogy and lookup indexes (written in the same block write set; `index=False` skips them).
The adjacency of a node lives in its `obj/` record (`g`, `x`: see `_app.py`) while short; the
entries beyond the bound, and the relations below that are not per-object, are keys::

    gu/<node>\\0df\\0<eventID>  derived-from: the inputs of that transformation [keys]
    gu/<node>\\0cp|co\\0<other>  has-component / contains: [[from, to, ev, endEv]...]
    gd/<node>\\0dt\\0<eventID>  derived-into: the outputs of that transformation [keys]
    gd/<node>\\0cf|ci\\0<other>  component-of / contained-in: intervals as above
    gp/<passport>\\0su|pr\\0<p>   passport successor-of / predecessor-of
    ga/<subject>\\0at\\0<certId>  attestations of a subject
    gq/<idkey>\\0qn\\0<noticeId>  quality notices naming an object
    xe/<idkey>\\0<seq:8>        other events naming an object (not named by its edges), spilled
"""

from __future__ import annotations

SEP = b"\x00"


def org(name: str) -> bytes:
    return b"org/" + name.encode()


def agent(pub: bytes) -> bytes:
    return b"agent/" + pub


def nonce(pub: bytes) -> bytes:
    return b"nonce/" + pub


PREFIXES = b"meta/prefixes"
SEQ = b"meta/seq"


def obj(key: str) -> bytes:
    return b"obj/" + key.encode()


def event(eid: str) -> bytes:
    return b"ev/" + eid.encode()


def declaration(eid: str) -> bytes:
    return b"ed/" + eid.encode()


def seq(n: int) -> bytes:
    return b"es/" + n.to_bytes(8, "big")


def transformation(tid: str) -> bytes:
    return b"tf/" + tid.encode()


def proposal(pid: str) -> bytes:
    return b"cp/" + pid.encode()


def passport(pid: str) -> bytes:
    return b"pp/" + pid.encode()


def passport_history(pid: str, ver: int) -> bytes:
    return b"ph/" + pid.encode() + SEP + ver.to_bytes(4, "big")


def attestation(cid: str) -> bytes:
    return b"at/" + cid.encode()


def notice(nid: str) -> bytes:
    return b"qn/" + nid.encode()


# upstream relations (trace back) and downstream ones (trace forward) share one prefix per
# node, so a walk reads each node's neighbours with a single range scan
_GROUP = {b"df": b"gu/", b"cp": b"gu/", b"co": b"gu/", b"dt": b"gd/", b"cf": b"gd/",
          b"ci": b"gd/", b"su": b"gp/", b"pr": b"gp/", b"at": b"ga/", b"qn": b"gq/"}
UP, DOWN = b"gu/", b"gd/"


def edge(rel: bytes, a: str, b: str) -> bytes:
    return _GROUP[rel] + a.encode() + SEP + rel + SEP + b.encode()


def edge_prefix(rel: bytes, a: str) -> bytes:
    return _GROUP[rel] + a.encode() + SEP + rel + SEP


def node_prefix(group: bytes, a: str) -> bytes:
    """All edges of one direction (UP or DOWN) of node `a`."""
    return group + a.encode() + SEP


def split_edge(k: bytes) -> tuple[bytes, str]:
    """(relation, other end) of an edge key."""
    _, rel, other = k.split(SEP, 2)
    return rel, other.decode()


def obj_event(key: str, n: int) -> bytes:
    return b"xe/" + key.encode() + SEP + n.to_bytes(8, "big")


def obj_event_prefix(key: str) -> bytes:
    return b"xe/" + key.encode() + SEP


def tail(k: bytes) -> str:
    """The other end of an edge key."""
    return k.rsplit(SEP, 1)[1].decode()
