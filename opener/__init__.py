"""fedchem.opener."""
