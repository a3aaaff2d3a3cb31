"""`fedchem node` and `make deploy-partner`: one partner's Substra node on Kubernetes.

`config` (the deployment section of a partner config), `network` (cross-checks of the consortium's nodes),
`values` (Helm values), `helm` (running helm; the chart and stand-ins), `helm_install` (which helm binary),
`cluster` (the Kubernetes client), `deploy` (install, upgrade or remove a node), `register` (the dataset-registration Job's entry point). Nothing here imports `orchestrator.run`.
"""
