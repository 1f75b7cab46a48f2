"""The wire: libp2p host, permissioning, framing, consensus/tx/sync protocols.

I/O boundary: all network I/O of a node lives here (trio + py-libp2p).
"""
