"""The agreement: a sans-IO BFT core and its deterministic simulator.

I/O boundary: none. No sockets, clocks or disks; those are inputs and actions.
"""
