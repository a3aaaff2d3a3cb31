"""fedchem.metrics."""
