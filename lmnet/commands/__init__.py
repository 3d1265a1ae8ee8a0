"""CLI sub-commands, one module each (see :mod:`lmnet.cli` for the contract)."""
