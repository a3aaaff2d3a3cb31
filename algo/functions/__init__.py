"""The Substra task entry points: one module per group of functions, and `specs`, the table of them all.

`specs.FUNCTIONS` declares every function's inputs, outputs and what each output holds; registration on Substra and
the orchestrator's privacy checker both read it.
"""
