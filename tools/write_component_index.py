"""Write the component index that ``mtlrec.config.fast_check`` reads, from the registries.

The index (``src/mtlrec/config/components.json``) lists every registered component with
its constructor's parameters, so the command line can check a config's names and
parameters without importing torch. Run this after adding a component or changing a
constructor; ``--check`` only compares (exit 1 when the committed file is stale).

    python tools/write_component_index.py          # rewrite the file
    python tools/write_component_index.py --check  # what the test suite runs
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mtlrec.config.fast_check import REGENERATE
from mtlrec.fusion.check import build_index

INDEX = Path(__file__).resolve().parents[1] / "src" / "mtlrec" / "config" / "components.json"


def render() -> str:
    """The index as the committed file holds it."""
    return json.dumps(build_index(), indent=2) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="Compare only; exit 1 if stale.")
    args = parser.parse_args()
    text = render()
    if args.check:
        current = INDEX.read_text(encoding="utf-8") if INDEX.is_file() else ""
        if current != text:
            print(
                f"{INDEX} does not match the registries; run: {REGENERATE}",
                file=sys.stderr,
            )
            return 1
        print(f"{INDEX} is up to date")
        return 0
    INDEX.write_text(text, encoding="utf-8")
    print(f"wrote {INDEX}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
