"""CBV 2.0 code lists and the consortium's own enumerations.

Bare CBV words are what GS1's JSON schema accepts for CBV values; any other absolute URI is a
private vocabulary and is allowed (`ex:...`, `https://...`) unless it pretends to be CBV.
"""

from __future__ import annotations

BIZ_STEPS = frozenset({
    "accepting", "arriving", "assembling", "collecting", "commissioning",
    "consigning", "creating_class_instance", "cycle_counting", "decommissioning", "departing",
    "destroying", "disassembling", "dispensing", "encoding", "entering_exiting", "holding",
    "inspecting", "installing", "killing", "loading", "other", "packing", "picking", "receiving",
    "removing", "repackaging", "repairing", "replacing", "reserving", "retail_selling",
    "shipping", "staging_outbound", "stock_taking", "stocking", "storing", "transporting",
    "unloading", "unpacking", "void_shipping", "sensor_reporting", "sampling",
})

DISPOSITIONS = frozenset({
    "active", "container_closed", "damaged", "destroyed", "dispensed", "disposed", "encoded",
    "expired", "in_progress", "in_transit", "inactive", "no_pedigree_match", "non_sellable_other",
    "partially_dispensed", "recalled", "reserved", "retail_sold", "returned",
    "sellable_accessible", "sellable_not_accessible", "stolen", "unknown", "available",
    "completeness_verified", "completeness_inferred", "conformant", "container_open",
    "mismatch_instance", "mismatch_class", "mismatch_quantity", "needs_replacement",
    "non_conformant", "unavailable",
})

BIZ_TRANSACTION_TYPES = frozenset({
    "bol", "cert", "desadv", "inv", "pedigree", "po", "poc", "prodorder", "recadv", "rma",
    "testprd", "testres", "upevt",
})

SOURCE_DEST_TYPES = frozenset({"owning_party", "possessing_party", "location"})
ERROR_REASONS = frozenset({"did_not_occur", "incorrect_data"})
ACTIONS = frozenset({"ADD", "OBSERVE", "DELETE"})

EVENT_KINDS = ("ObjectEvent", "AggregationEvent", "AssociationEvent", "TransformationEvent",
               "TransactionEvent")

PASSPORT_STATUSES = frozenset({"original", "reused", "repurposed", "remanufactured", "waste",
                               "ended"})
PASSPORT_LEVELS = frozenset({"model", "batch", "item"})
TIERS = ("public", "legit_interest", "authority")
NOTICE_TYPES = frozenset({"investigation", "alert", "block", "recall"})
NOTICE_STATUSES = frozenset({"open", "closed", "cancelled"})

# role -> permissions. "validator" is fixed by genesis (it names consensus voters).
PERMISSIONS: dict[str, frozenset[str]] = {
    "validator": frozenset({"event.write", "custody", "passport.write", "notice.write",
                            "org.register", "agent.manage", "prefix.claim"}),
    "member": frozenset({"event.write", "custody", "passport.write", "notice.write",
                         "agent.manage", "prefix.claim"}),
    "recycler": frozenset({"event.write", "custody", "passport.write", "notice.write",
                           "agent.manage", "prefix.claim", "passport.waste"}),
    "certifier": frozenset({"attestation.write", "agent.manage", "notice.write"}),
    "authority": frozenset({"notice.recall", "notice.write", "agent.manage", "tier.authority"}),
    "observer": frozenset({"agent.manage"}),
}
KNOWN_ROLES = frozenset(PERMISSIONS)

#: prefixes of CBV's own URIs: a value under one of them must be a CBV word, not a private one
CBV_URI_PREFIXES = ("urn:epcglobal:cbv:", "https://ns.gs1.org/cbv/", "http://ns.gs1.org/cbv/")


def vocab_ok(value: object, words: frozenset[str]) -> bool:
    """A bare CBV word from `words`, or a non-CBV absolute URI (a private vocabulary)."""
    if not isinstance(value, str) or not value:
        return False
    if value in words:
        return True
    return ":" in value and not value.startswith(CBV_URI_PREFIXES)
