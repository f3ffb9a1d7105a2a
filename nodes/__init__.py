"""ParkTrace consortium nodes: consensus state machine and the runtime that drives it."""
