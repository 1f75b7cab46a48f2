from __future__ import annotations

import itertools

import pytest

from consensus import InvalidTransition, Step
from consensus._state import TRANSITIONS, Event, diagram, transition


@pytest.mark.parametrize(("step", "event"), list(itertools.product(Step, Event)))
def test_transition_every_pair_is_in_the_table_or_raises(step: Step, event: Event) -> None:
    if (step, event) in TRANSITIONS:
        assert transition(step, event) is TRANSITIONS[(step, event)]
    else:
        with pytest.raises(InvalidTransition):
            transition(step, event)


def test_transition_round_entry_and_decision_always_reset_the_step() -> None:
    for step in Step:
        assert transition(step, Event.ENTER_ROUND) is Step.WAIT_PROPOSAL
        assert transition(step, Event.DECIDE) is Step.WAIT_PROPOSAL


def test_transition_no_second_prepare_quorum_after_commit() -> None:
    with pytest.raises(InvalidTransition):
        transition(Step.COMMITTED, Event.PREPARE_QUORUM)
    with pytest.raises(InvalidTransition):
        transition(Step.PREPARED, Event.PROPOSAL_ACCEPTED)


def test_diagram_names_every_transition() -> None:
    text = diagram()
    assert text.count("-->") == len(TRANSITIONS) + 1
    assert all(s.name in text for s in Step)


def test_diagram_in_docs_is_current() -> None:
    from pathlib import Path

    doc = Path(__file__).parents[3] / "docs" / "consensus.md"
    assert diagram() in doc.read_text()
