"""The user's entry points: the `partledger` command, the node runtime wiring, the HTTP API."""
