"""Deterministic fault simulator for the consensus state machine, driven by the tests and by
`bench/simulate.py`.

`simulation.run(seed, n)` runs n validators on a virtual network and clock under a fault
plan drawn from the seed and returns a `Result` with any invariant violations and a trace
digest; `bench/simulate.py` runs many seeds and replays one.
"""
