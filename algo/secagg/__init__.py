"""fedchem.algo.secagg."""
