"""What the config-driven commands (pretrain, finetune, plan) share on the command line."""

from __future__ import annotations

import argparse


def config_command(subparsers, name: str, *, summary: str, description: str, example: str, func,
                   config_required: bool = True):  # fmt: skip
    """A sub-command taking `--config FILE[:ARG]` plus any `--config.KEY=VALUE` overrides."""
    p = subparsers.add_parser(
        name, help=summary, description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )  # fmt: skip
    p.add_argument("--config", required=config_required,
                   help=f"config file[:arg], e.g. {example}")  # fmt: skip
    p.set_defaults(func=func, accepts_overrides=True)
    return p
