"""`fedchem report`: each partner's own answer to "did joining help me?", recomputed from its saved predictions.

`write.write_report` is the entry point; `inputs` loads a run folder, `compare` and `stats` compute the figures,
`summary` words them, `plots` and `html` draw them. Nothing here imports `orchestrator.run`.
"""
