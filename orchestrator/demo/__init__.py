"""A whole consortium on one machine, for `fedchem demo`, `fedchem data`, the tests and the benchmarks.

`public_data` turns public sets into partner folders, `consortium` prepares every partner, `pipeline` runs the
demo. Production code never imports this package (tests/test_packaging.py checks it).
"""
