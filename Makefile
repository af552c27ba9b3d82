# The dev loop. The README's two commands are scripts/demo and scripts/test; these call them.
.PHONY: demo test lint bench

demo:
	./scripts/demo

test:
	./scripts/test

lint:
	.venv/bin/python -m pip install --quiet ruff mypy types-PyYAML
	.venv/bin/ruff check dripengine tests benchmarks
	.venv/bin/ruff format --check dripengine tests benchmarks
	.venv/bin/mypy

bench:
	.venv/bin/python benchmarks/run.py
