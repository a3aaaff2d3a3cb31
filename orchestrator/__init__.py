"""fedchem.orchestrator."""
