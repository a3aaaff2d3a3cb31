"""Install the pinned helm v3.19.0 into .tools/ (make helm), with the project's virtualenv Python.
The code is fedchem.orchestrator.node.helm_install (an installed wheel finds helm the same way).
Usage: python deploy/install_helm.py [--dest .tools]   (prints the helm path)
"""

import sys

from fedchem.orchestrator.node.helm_install import main

if __name__ == "__main__":
    sys.exit(main())
