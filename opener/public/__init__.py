"""Readers of the public data sets (MoleculeNet, ChEMBL hERG, Biogen ADME, MoleculeACE) into partner tables.

Each reader deals one public set to several partners in the MELLODDY-TUNER input format; `common` holds the table
type and the dealing helpers.
"""
