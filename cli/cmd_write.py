"""Helpers for the consortium's own transaction kinds, so that members need not write JSON:
custody hand-over, attestations, quality notices (recall), and passport writes.

Each command builds the transaction body, signs it with the member's org key and submits it
through a running node (`cli._client.NodeClient`), then waits until it is committed or rejected;
a rejection exits 1 with the state machine's reason. Restricted passport attributes are sealed
here, on the member's machine, to the entitled organisations' keys as recorded on the ledger.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import click

from cli._output import EXIT_FAILURE, EXIT_USAGE, emit, fail
from cli.cmd_remote import json_option, node_option, resolve_node

key_option = click.option("--key", "key_path", required=True,
                          type=click.Path(dir_okay=False, exists=True, path_type=Path),
                          help="your organisation's key file (signs the transaction)")


def submit(kind: str, body: dict[str, Any], key_path: Path, node_url: str | None,
           json_mode: bool) -> None:
    from cli._client import NodeClient
    from ledger._keyfile import read_key_file

    key = read_key_file(key_path)
    with NodeClient(resolve_node(node_url, json_mode)) as client:
        (tx,) = client.sign(key, [(kind, body)])
        (result,) = client.submit_and_wait([tx])
    doc = {"kind": kind, "body": body, **result}
    emit(doc, json_mode, lambda d: click.echo(
        f"{d['kind']} {d['tx_id'][:16]}… {d['status']}"
        + (f" at height {d['height']}" if d["status"] == "committed" else
           f": {d.get('reason')} [{d.get('code')}]")))
    if result["status"] != "committed":
        raise SystemExit(EXIT_FAILURE)


def _new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


# -- custody -------------------------------------------------------------------------------------

@click.group()
def custody() -> None:
    """hand over custody or ownership: the holder proposes, the receiver accepts.

    \b
    example:
      partledger custody propose urn:epc:id:sgtin:4000003.000021.PK2 --to ebike-co --role both --key org.key
      partledger custody accept ho-3f2a91c0d4e1 --key receiver-org.key
    """


@custody.command("propose")
@click.argument("epcs", nargs=-1, required=True)
@click.option("--to", "to", required=True, help="receiving organisation")
@click.option("--role", type=click.Choice(["custodian", "owner", "both"]), default="both",
              show_default=True)
@click.option("--id", "proposal_id", help="proposal id (default: generated)")
@key_option
@node_option
@json_option
def custody_propose(epcs: tuple[str, ...], to: str, role: str, proposal_id: str | None,
                    key_path: Path, node_url: str | None, json_mode: bool) -> None:
    """propose handing EPCS over to another organisation.

    example: partledger custody propose ID... --to ORG --role owner --key org.key
    """
    submit("CustodyPropose", {"proposalId": proposal_id or _new_id("ho"), "epcs": list(epcs),
                              "role": role, "to": to}, key_path, node_url, json_mode)


def _answer(response: str) -> click.Command:
    @click.argument("proposal_id")
    @key_option
    @node_option
    @json_option
    def cmd(proposal_id: str, key_path: Path, node_url: str | None, json_mode: bool) -> None:
        submit("CustodyAnswer", {"proposalId": proposal_id, "response": response}, key_path,
               node_url, json_mode)
    verb = {"accept": "accept a hand-over proposed to you",
            "reject": "reject a hand-over proposed to you",
            "cancel": "cancel a hand-over you proposed"}[response]
    return click.command(response, help=f"{verb}.\n\nexample: partledger custody {response} "
                         "PROPOSAL_ID --key org.key")(cmd)


for _r in ("accept", "reject", "cancel"):
    custody.add_command(_answer(_r))


# -- attestations --------------------------------------------------------------------------------

@click.command()
@click.argument("subject")
@click.option("--standard", required=True, help="what is certified, e.g. 'IEC 62619:2022'")
@click.option("--valid-from", required=True, help="ISO 8601 date-time")
@click.option("--valid-to", required=True, help="ISO 8601 date-time")
@click.option("--doc", "doc_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="the certificate document (its SHA-256 goes on the ledger)")
@click.option("--uri", default=None, help="where the certificate can be fetched")
@click.option("--result", default="pass", show_default=True)
@click.option("--id", "cert_id", help="certificate id (default: generated)")
@key_option
@node_option
@json_option
def attest(subject: str, standard: str, valid_from: str, valid_to: str, doc_file: Path | None,
           uri: str | None, result: str, cert_id: str | None, key_path: Path,
           node_url: str | None, json_mode: bool) -> None:
    """attest SUBJECT (an identifier, event id or organisation) as a certifier.

    example: partledger attest urn:epc:class:lgtin:4000003.000020.CELL-A --standard "IEC 62619" \\
      --valid-from 2026-01-01T00:00:00Z --valid-to 2027-01-01T00:00:00Z --key certifier.key
    """
    from ledger import sha256

    body: dict[str, Any] = {"certId": cert_id or _new_id("cert"), "subject": subject,
                            "standard": standard, "validFrom": valid_from, "validTo": valid_to,
                            "result": result}
    if doc_file is not None:
        body["docHash"] = sha256(doc_file.read_bytes()).hex()
    if uri is not None:
        body["uri"] = uri
    submit("AttestationIssue", body, key_path, node_url, json_mode)


# -- quality notices -----------------------------------------------------------------------------

@click.command()
@click.argument("notice_type", type=click.Choice(["recall", "alert", "block", "investigation"]))
@click.argument("affected", nargs=-1, required=True)
@click.option("--severity", type=click.Choice(["low", "medium", "high", "critical"]),
              default="high", show_default=True)
@click.option("--id", "notice_id", help="notice id (default: generated)")
@key_option
@node_option
@json_option
def notice(notice_type: str, affected: tuple[str, ...], severity: str, notice_id: str | None,
           key_path: Path, node_url: str | None, json_mode: bool) -> None:
    """issue a quality notice (a recall, alert, block or investigation) on AFFECTED items.

    example: partledger notice recall urn:epc:class:lgtin:4000003.000020.CELL-B --key org.key
    """
    submit("QualityNotice", {"noticeId": notice_id or _new_id("qn"), "type": notice_type,
                             "affected": list(affected), "severity": severity},
           key_path, node_url, json_mode)


# -- passports -----------------------------------------------------------------------------------

def _sealed_attributes(attrs: Any, node_url: str, json_mode: bool) -> list[dict[str, Any]]:
    """Public attributes pass through; a restricted one given as {path, tier, value,
    entitled: [org...]} is sealed to those organisations' keys as the ledger records them."""
    from cli.node._remote import RemoteReader
    from ledger import decode
    from ledger.provenance import _keys
    from ledger.provenance._passport import seal_attribute

    if not isinstance(attrs, list):
        fail("attributes must be a list", code=EXIT_USAGE, json_mode=json_mode)
    out = []
    with RemoteReader(node_url) as reader:
        for a in attrs:
            if not isinstance(a, dict) or "path" not in a:
                fail("each attribute needs at least a path", code=EXIT_USAGE, json_mode=json_mode)
            tier = a.get("tier", "public")
            if tier == "public" or "entitled" not in a:
                out.append(a)
                continue
            recipients = {}
            for org in a["entitled"]:
                raw = reader.get(_keys.org(org))
                if raw is None:
                    fail(f"organisation {org} (entitled to {a['path']}) is not on the ledger",
                         code=EXIT_USAGE, json_mode=json_mode)
                recipients[org] = decode(raw)["key"]
            out.append(seal_attribute(a["path"], tier, a["value"], recipients))
    return out


def _passport_body(file: Path, node_url: str, json_mode: bool) -> dict[str, Any]:
    try:
        body = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        fail(f"{file} is not a JSON passport body ({exc})", code=EXIT_USAGE, json_mode=json_mode)
    if not isinstance(body, dict):
        fail(f"{file} must hold a JSON object", code=EXIT_USAGE, json_mode=json_mode)
    if "attributes" in body:
        body["attributes"] = _sealed_attributes(body["attributes"], node_url, json_mode)
    return body


def _passport_write(kind: str) -> click.Command:
    @click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
    @key_option
    @node_option
    @json_option
    def cmd(file: Path, key_path: Path, node_url: str | None, json_mode: bool) -> None:
        url = resolve_node(node_url, json_mode)
        submit(kind, _passport_body(file, url, json_mode), key_path, url, json_mode)
    what = {"PassportIssue": "issue a material passport", "PassportUpdate":
            "add attributes to a passport (history is kept)", "PassportSupersede":
            "a new passport linked to its predecessors (remanufacturing, second life)"}[kind]
    name = kind.removeprefix("Passport").lower()
    return click.command(name, help=f"{what}; FILE is the JSON body. restricted attributes "
                         'given as {"path", "tier", "value", "entitled": [org, ...]} are sealed '
                         f"to those organisations.\n\nexample: partledger passport {name} "
                         "passport.json --key org.key")(cmd)


@click.command("status")
@click.argument("passport_id")
@click.argument("status", type=click.Choice(["original", "reused", "repurposed",
                                             "remanufactured", "waste", "ended"]))
@click.option("--new-responsible-org", default=None, help="with waste: who takes over")
@key_option
@node_option
@json_option
def passport_status(passport_id: str, status: str, new_responsible_org: str | None,
                    key_path: Path, node_url: str | None, json_mode: bool) -> None:
    """change a passport's status.

    example: partledger passport status pp-ebike-1 waste --new-responsible-org circular-alu --key org.key
    """
    body: dict[str, Any] = {"passportId": passport_id, "status": status}
    if new_responsible_org:
        body["newResponsibleOrg"] = new_responsible_org
    submit("PassportStatus", body, key_path, node_url, json_mode)


def passport_group() -> click.Group:
    """The `passport` group: `show` (a query) plus the writing commands."""
    from cli.cmd_query import passport

    for kind in ("PassportIssue", "PassportUpdate", "PassportSupersede"):
        passport.add_command(_passport_write(kind))
    passport.add_command(passport_status)
    return passport


passport = passport_group()
