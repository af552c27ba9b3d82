"""Run the benchmarks: ``python benchmarks/run.py [NAME…] [--quick]``.

Every ``benchmarks/bench_<name>.py`` exposes ``run(ctx) -> Iterable[dict]``; each measurement is
printed as one JSON object a line (``name``, ``value``, ``unit``, and ``baseline`` + ``ratio`` where
a baseline ran side by side). PostgreSQL figures need ``DRIP_BENCH_POSTGRES_URL`` or
``DRIP_TEST_POSTGRES_URL``; without one, a line says they were skipped. Exit status 1 if a
benchmark failed (its line carries ``error``), 2 for an unknown name.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # `benchmarks.*` and the in-tree `dripengine`
    sys.path.insert(0, str(HERE.parent))

from benchmarks.common import Context, postgres_url_from_env  # noqa: E402


def available() -> list[str]:
    return sorted(path.stem.removeprefix("bench_") for path in HERE.glob("bench_*.py"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all: {available()})")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    args = parser.parse_args(argv)
    names = args.names or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        parser.error(f"no benchmark {', '.join(unknown)}; there are: {', '.join(available())}")
    failed = False
    for name in names:
        with tempfile.TemporaryDirectory(prefix=f"drip-bench-{name}-") as tmp:
            ctx = Context(Path(tmp), quick=args.quick, postgres_url=postgres_url_from_env())
            try:
                module = importlib.import_module(f"benchmarks.bench_{name}")
                for line in module.run(ctx):
                    print(json.dumps(line, ensure_ascii=False), flush=True)
            except Exception as exc:  # report and go on with the next benchmark
                failed = True
                print(
                    json.dumps({"name": name, "error": f"{type(exc).__name__}: {exc}"}), flush=True
                )
                traceback.print_exc(file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
