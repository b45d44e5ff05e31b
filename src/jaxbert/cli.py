"""The `jaxbert` command: a thin dispatcher over sub-commands.

Each area registers its own sub-commands (`add_parser(subparsers)` functions in its
`commands.py`), so this file stays a table and user errors are turned into one clear
message here instead of a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from jaxbert.errors import UserError

# (module, function) pairs; each function receives the sub-parsers object and adds its own.
_REGISTRARS = [
    ("jaxbert.model.commands", "add_parsers"),
    ("jaxbert.data.commands", "add_parsers"),
    ("jaxbert.train.commands", "add_parsers"),
    ("jaxbert.convert", "add_parsers"),
    ("jaxbert.finetune.commands", "add_parsers"),
    ("jaxbert.embed", "add_parsers"),
    ("jaxbert.plan", "add_parsers"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaxbert", description="BERT pretraining and fine-tuning in JAX/Flax."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module_name, fn_name in _REGISTRARS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name == module_name:  # area not built yet
                continue
            raise
        getattr(module, fn_name)(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and not getattr(args, "accepts_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        result = (
            args.func(args, rest) if getattr(args, "accepts_overrides", False) else args.func(args)
        )
    except (UserError, FileNotFoundError) as e:
        print(f"jaxbert {args.command}: error: {e}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
