"""``python -m lmnet`` is the same as the ``lmnet`` console script."""

import sys

from lmnet.cli import main

if __name__ == "__main__":
    sys.exit(main())
