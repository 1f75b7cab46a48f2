"""Provenance: the state machine of EPCIS 2.0 events, custody, passports, and its queries.

I/O boundary: pure functions over a `StateReader` (the store or an in-memory state); the only
disk access is reading the shipped EPCIS JSON schemas (package data) for `epcis check`.
"""

from ledger.provenance._app import ProvenanceApp as ProvenanceApp
from ledger.provenance._ids import id_key as id_key
from ledger.provenance._memledger import MemLedger as MemLedger
from ledger.provenance._memledger import make_genesis as make_genesis
from ledger.provenance._passport import commitment as commitment
from ledger.provenance._passport import open_attribute as open_attribute
from ledger.provenance._passport import seal_attribute as seal_attribute
from ledger.provenance._passport import verify_disclosure as verify_disclosure
from ledger.provenance._rules import check_event as check_event
from ledger.provenance._workload import synthetic_workload as synthetic_workload

__all__ = [
    "MemLedger",
    "ProvenanceApp",
    "check_event",
    "commitment",
    "id_key",
    "make_genesis",
    "open_attribute",
    "seal_attribute",
    "synthetic_workload",
    "verify_disclosure",
]
