# The two commands of the README:  `make demo`  and  `make test`.  Both set up .venv first.
PY := .venv/bin/python
DEMO_OUT ?= runs/demo

.PHONY: setup demo test bench clean-venv

setup:
	@bash tools/setup.sh

demo: setup
	$(PY) -m lmnet demo --out $(DEMO_OUT)

test: setup
	$(PY) -m pytest -n 2 -q tests

bench: setup
	$(PY) -m benchmarks

clean-venv:
	rm -rf .venv
