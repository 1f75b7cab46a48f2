"""The wire: libp2p host, permissioning, framing, consensus/tx/sync protocols.

I/O boundary: all network I/O of a node lives here (trio + py-libp2p). Peers are named by their
32-byte node public key; libp2p peer ids stay inside this package.
"""

from p2p._framing import FrameDecoder as FrameDecoder
from p2p._framing import FrameStats as FrameStats
from p2p._framing import decode_batch as decode_batch
from p2p._framing import encode_frame as encode_frame
from p2p._host import Host as Host
from p2p._host import HostOptions as HostOptions
from p2p._host import HostStatistics as HostStatistics
from p2p._host import Inbound as Inbound
from p2p._host import Member as Member
from p2p._host import open_host as open_host
from p2p._host import protocol_for as protocol_for
from p2p._identity import keypair_for as keypair_for
from p2p._identity import peer_id_for as peer_id_for
from p2p._identity import public_key_of as public_key_of
from p2p._logging import route_libp2p_logging as route_libp2p_logging
from p2p._security import MemberNoise as MemberNoise

__all__ = [
    "FrameDecoder",
    "FrameStats",
    "Host",
    "HostOptions",
    "HostStatistics",
    "Inbound",
    "Member",
    "MemberNoise",
    "decode_batch",
    "encode_frame",
    "keypair_for",
    "open_host",
    "peer_id_for",
    "protocol_for",
    "public_key_of",
    "route_libp2p_logging",
]
