"""The agreement: a sans-IO Istanbul BFT core and its deterministic simulator.

I/O boundary: none. No sockets, clocks, disks or randomness in the core; those are inputs and
actions. (`consensus.sim` drives cores from a seeded `random.Random` and is for tests and the
`partledger sim` command only.)

How a node drives a core (the contract; docs/consensus.md has the protocol):

    core = Core(Config(chain=chain_id, validators=node_keys, hash_block=...), node_key,
                height=store_tip + 1)
    # or, after a restart:  Core.restore(saved_state_bytes, config=..., key=...,
    #                                     committed_height=store_tip)
    for action in core.step(Start()): execute(action)
    ... then for every event: for action in core.step(event): execute(action)

Inputs (all frozen keyword-only dataclasses):
- `Start()` once, first.
- `MessageReceived(msg=bytes)` for every consensus message from any peer (the core decodes,
  checks signatures with `ledger.verify_batch`, drops and counts what is bad).
- `TimeoutFired(height, round)` when the timer armed by `ScheduleTimeout` expires.
- `ProposalValueReady(height, round, block_hash, block_bytes)` answering `RequestProposalValue`.
- `ProposalValidated(height, round, block_hash, ok)` answering `ValidateProposal`.
- `BlockCommittedBySync(height, block_hash, seal)` after the node fetched, checked
  (`ledger.verify_seal`) and stored a block from block sync; the core re-checks the seal.

Actions — execute them IN ORDER, each completely before the next:
- `Persist(state)`: write `state.encode()` durably (fsync) to `DIR/data/consensus/`, replacing
  the previous one, BEFORE the following `Broadcast`/`Send` leaves ("persist before you vote").
- `Broadcast(msg)`: send to every other validator. `Send(to, msg)`: send to the validator whose
  node key is `to`. The core has already processed its own copy.
- `ScheduleTimeout(height, round, after_ms)`: (re)arm THE single timer (cancel the previous).
- `RequestProposalValue(height, round)`: build a block on the committed tip, then feed
  `ProposalValueReady`.
- `ValidateProposal(height, round, block_hash, block_bytes)`: run the state machine on it, then
  feed `ProposalValidated` (ok=False for any failing transaction or wrong state root).
- `Commit(height, block_hash, block_bytes, seal)`: final; execute and store block + seal.
- `RequestSync(from_height, peer_hint)`: fetch blocks with seals from that height on, then feed
  `BlockCommittedBySync` for each one stored.
- `ReportEvidence(evidence)`: log it, count it in metrics, keep it for the API.
"""

from consensus._core import Config as Config
from consensus._core import Core as Core
from consensus._core import highest_prepared as highest_prepared
from consensus._events import Action as Action
from consensus._events import BlockCommittedBySync as BlockCommittedBySync
from consensus._events import Broadcast as Broadcast
from consensus._events import Commit as Commit
from consensus._events import Evidence as Evidence
from consensus._events import Input as Input
from consensus._events import MessageReceived as MessageReceived
from consensus._events import Persist as Persist
from consensus._events import PersistedState as PersistedState
from consensus._events import ProposalValidated as ProposalValidated
from consensus._events import ProposalValueReady as ProposalValueReady
from consensus._events import ReportEvidence as ReportEvidence
from consensus._events import RequestProposalValue as RequestProposalValue
from consensus._events import RequestSync as RequestSync
from consensus._events import ScheduleTimeout as ScheduleTimeout
from consensus._events import Send as Send
from consensus._events import Start as Start
from consensus._events import Statistics as Statistics
from consensus._events import TimeoutFired as TimeoutFired
from consensus._events import ValidateProposal as ValidateProposal
from consensus._messages import CommitVote as CommitVote
from consensus._messages import Decided as Decided
from consensus._messages import Prepare as Prepare
from consensus._messages import Proposal as Proposal
from consensus._messages import RoundChange as RoundChange
from consensus._messages import decode_message as decode_message
from consensus._state import InvalidTransition as InvalidTransition
from consensus._state import Step as Step

__all__ = [
    "Action",
    "BlockCommittedBySync",
    "Broadcast",
    "Commit",
    "CommitVote",
    "Config",
    "Core",
    "Decided",
    "Evidence",
    "Input",
    "InvalidTransition",
    "MessageReceived",
    "Persist",
    "PersistedState",
    "Prepare",
    "Proposal",
    "ProposalValidated",
    "ProposalValueReady",
    "ReportEvidence",
    "RequestProposalValue",
    "RequestSync",
    "RoundChange",
    "ScheduleTimeout",
    "Send",
    "Start",
    "Statistics",
    "Step",
    "TimeoutFired",
    "ValidateProposal",
    "decode_message",
    "highest_prepared",
]
