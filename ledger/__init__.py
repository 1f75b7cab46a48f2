"""The data of partledger: encoding, keys, transactions, blocks, Merkle proofs, seals, state.

I/O boundary: this package touches the disk only in its store and key-file modules, and never
the network; it imports none of `consensus`, `p2p` or `cli`.
"""

from ledger._accel import BACKEND_NAME as BACKEND_NAME
from ledger._app import Application as Application
from ledger._app import BlockContext as BlockContext
from ledger._app import Execution as Execution
from ledger._app import StateReader as StateReader
from ledger._app import TxResult as TxResult
from ledger._app import next_state_root as next_state_root
from ledger._block import Block as Block
from ledger._block import BlockHeader as BlockHeader
from ledger._block import Seal as Seal
from ledger._block import commit_vote_message as commit_vote_message
from ledger._block import quorum_size as quorum_size
from ledger._block import sign_commit as sign_commit
from ledger._block import tx_root as tx_root
from ledger._block import validators_hash as validators_hash
from ledger._block import verify_seal as verify_seal
from ledger._codec import decode as decode
from ledger._codec import encode as encode
from ledger._crypto import SigningKey as SigningKey
from ledger._crypto import sha256 as sha256
from ledger._crypto import verify as verify
from ledger._crypto import verify_batch as verify_batch
from ledger._genesis import ConsensusParams as ConsensusParams
from ledger._genesis import Genesis as Genesis
from ledger._genesis import Member as Member
from ledger._home import Home as Home
from ledger._keyfile import KeyFileInfo as KeyFileInfo
from ledger._keyfile import key_file_info as key_file_info
from ledger._keyfile import read_key_file as read_key_file
from ledger._keyfile import write_key_file as write_key_file
from ledger._memstate import MemState as MemState
from ledger._memstate import Overlay as Overlay
from ledger._store import Store as Store
from ledger._store import Tip as Tip
from ledger._tx import Transaction as Transaction
from ledger._tx import verify_transactions as verify_transactions

__all__ = [
    "BACKEND_NAME",
    "Application",
    "Block",
    "BlockContext",
    "BlockHeader",
    "ConsensusParams",
    "Execution",
    "Genesis",
    "Home",
    "KeyFileInfo",
    "MemState",
    "Member",
    "Overlay",
    "Seal",
    "SigningKey",
    "StateReader",
    "Store",
    "Tip",
    "Transaction",
    "TxResult",
    "commit_vote_message",
    "decode",
    "encode",
    "key_file_info",
    "next_state_root",
    "quorum_size",
    "read_key_file",
    "sha256",
    "sign_commit",
    "tx_root",
    "validators_hash",
    "verify",
    "verify_batch",
    "verify_seal",
    "verify_transactions",
    "write_key_file",
]
