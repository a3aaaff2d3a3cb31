"""fedchem.algo."""
