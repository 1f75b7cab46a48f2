"""The per-round step machine of the consensus core, as a table.

Rule 1: every transition of a round's step lives in `TRANSITIONS` below; the core calls
`transition(step, event)` and never assigns a step any other way.
Rule 2: this file knows nothing about messages, keys or quorums — the core decides WHEN an event
happened (a justified proposal arrived, a quorum formed, a timer fired); the table decides
whether that event is legal in the current step and what the next step is.

Theory of operation (IBFT, Moniz 2020, one height at a time):

    WAIT_PROPOSAL --PROPOSAL_ACCEPTED--> VALIDATING --PROPOSAL_VALID--> PREPARED
          |                                   \\--PROPOSAL_INVALID--> REJECTED
          |--PROPOSAL_VALID (value already validated)--> PREPARED
    any of WAIT_PROPOSAL/VALIDATING/REJECTED/PREPARED --PREPARE_QUORUM--> COMMITTED
    every step --ENTER_ROUND--> WAIT_PROPOSAL   (timer expiry, f+1 jump, justified later proposal)
    every step --DECIDE--> WAIT_PROPOSAL        (commit quorum or a checked seal: next height)

A pair missing from the table is a bug in the core (e.g. a second proposal accepted in one round,
or a second prepare quorum after COMMITTED): `transition` raises `InvalidTransition`, an
`AssertionError`, because a broken invariant must crash, not be papered over.
"""

from __future__ import annotations

import enum


class Step(enum.Enum):
    WAIT_PROPOSAL = "wait_proposal"  # no proposal accepted in this round yet
    VALIDATING = "validating"  # proposal accepted, the application's verdict pending
    REJECTED = "rejected"  # the accepted proposal is invalid: wait for the timer
    PREPARED = "prepared"  # PREPARE sent for the accepted proposal
    COMMITTED = "committed"  # prepare quorum seen, COMMIT sent (pr = this round)


class Event(enum.Enum):
    ENTER_ROUND = "enter_round"
    PROPOSAL_ACCEPTED = "proposal_accepted"
    PROPOSAL_VALID = "proposal_valid"
    PROPOSAL_INVALID = "proposal_invalid"
    PREPARE_QUORUM = "prepare_quorum"
    DECIDE = "decide"


class InvalidTransition(AssertionError):
    """The core asked for a transition the table does not allow (a bug, never peer input)."""


_S, _E = Step, Event

TRANSITIONS: dict[tuple[Step, Event], Step] = {
    (_S.WAIT_PROPOSAL, _E.ENTER_ROUND): _S.WAIT_PROPOSAL,
    (_S.WAIT_PROPOSAL, _E.PROPOSAL_ACCEPTED): _S.VALIDATING,
    (_S.WAIT_PROPOSAL, _E.PROPOSAL_VALID): _S.PREPARED,
    (_S.WAIT_PROPOSAL, _E.PROPOSAL_INVALID): _S.REJECTED,
    (_S.WAIT_PROPOSAL, _E.PREPARE_QUORUM): _S.COMMITTED,
    (_S.WAIT_PROPOSAL, _E.DECIDE): _S.WAIT_PROPOSAL,
    (_S.VALIDATING, _E.ENTER_ROUND): _S.WAIT_PROPOSAL,
    (_S.VALIDATING, _E.PROPOSAL_VALID): _S.PREPARED,
    (_S.VALIDATING, _E.PROPOSAL_INVALID): _S.REJECTED,
    (_S.VALIDATING, _E.PREPARE_QUORUM): _S.COMMITTED,
    (_S.VALIDATING, _E.DECIDE): _S.WAIT_PROPOSAL,
    (_S.REJECTED, _E.ENTER_ROUND): _S.WAIT_PROPOSAL,
    (_S.REJECTED, _E.PREPARE_QUORUM): _S.COMMITTED,
    (_S.REJECTED, _E.DECIDE): _S.WAIT_PROPOSAL,
    (_S.PREPARED, _E.ENTER_ROUND): _S.WAIT_PROPOSAL,
    (_S.PREPARED, _E.PREPARE_QUORUM): _S.COMMITTED,
    (_S.PREPARED, _E.DECIDE): _S.WAIT_PROPOSAL,
    # A node may reach COMMITTED on a prepare quorum for a value it validated in an earlier
    # round, before this round's proposal arrives; it still prepares that proposal afterwards.
    (_S.COMMITTED, _E.ENTER_ROUND): _S.WAIT_PROPOSAL,
    (_S.COMMITTED, _E.PROPOSAL_ACCEPTED): _S.COMMITTED,
    (_S.COMMITTED, _E.PROPOSAL_VALID): _S.COMMITTED,
    (_S.COMMITTED, _E.PROPOSAL_INVALID): _S.COMMITTED,
    (_S.COMMITTED, _E.DECIDE): _S.WAIT_PROPOSAL,
}


def transition(step: Step, event: Event) -> Step:
    """The step after `event` in `step`.

    Raises:
        InvalidTransition: the pair is not in the table.
    """
    try:
        return TRANSITIONS[(step, event)]
    except KeyError:
        raise InvalidTransition(f"consensus core: no transition from {step.name} on "
                                f"{event.name}") from None


def diagram() -> str:
    """The table as a Mermaid state diagram (docs/consensus.md embeds its output)."""
    lines = ["stateDiagram-v2", f"    [*] --> {Step.WAIT_PROPOSAL.name}"]
    for (src, event), dst in TRANSITIONS.items():
        lines.append(f"    {src.name} --> {dst.name}: {event.name}")
    return "\n".join(lines)
