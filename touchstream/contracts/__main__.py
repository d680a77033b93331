"""Write or check the generated AsyncAPI document.

    python -m touchstream.contracts --write    regenerate docs/asyncapi.yaml
    python -m touchstream.contracts --check    exit 1 if docs/asyncapi.yaml is stale
    python -m touchstream.contracts --json     print the document as JSON

Like ``python -m touchstream.schemas --markdown``: the file is never edited by hand, and CI
(``tests/unit/test_asyncapi.py``) fails when it and the schemas or topics disagree.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from touchstream.contracts.asyncapi import DOC_PATH, WRITE_COMMAND, render_json, render_yaml, yaml_available


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m touchstream.contracts", description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="regenerate the AsyncAPI file")
    action.add_argument("--check", action="store_true", help="exit 1 if the AsyncAPI file is stale")
    action.add_argument("--json", action="store_true", help="print the document as JSON")
    parser.add_argument("--path", type=Path, default=DOC_PATH, help=f"the YAML file (default {DOC_PATH})")
    args = parser.parse_args(argv)
    if args.json:
        sys.stdout.write(render_json())
        return 0
    if not yaml_available():
        print("PyYAML is not installed (pip install -e '.[test]'); --json still works", file=sys.stderr)
        return 2
    if args.write:
        args.path.write_text(render_yaml())
        print(f"wrote {args.path}")
        return 0
    if not args.path.exists() or args.path.read_text() != render_yaml():
        print(f"{args.path} is stale: {WRITE_COMMAND}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
