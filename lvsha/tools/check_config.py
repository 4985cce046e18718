"""`lvsha check-config [PATH]`: every problem of a configuration file at once.

Exit 0 when valid (warnings on stderr), 78 (EX_CONFIG) with each problem as
`PATH: key.path: message` when not; never a traceback.
"""

from __future__ import annotations

import sys

from lvsha.config import load_config
from lvsha.errors import ConfigError
from lvsha.exits import EX_CONFIG, EX_OK


def main(path: str) -> int:
    """Validate `path`; print the summary on stdout, problems on stderr."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{path}: {problem}", file=sys.stderr)
        print(f"{path}: {len(exc.problems)} problem(s)", file=sys.stderr)
        return EX_CONFIG
    for warning in config.warnings:
        print(f"{path}: warning: {warning}", file=sys.stderr)
    print(
        f"{path}: ok ({len(config.vrrp)} VRRP instances, "
        f"{len(config.virtual_servers)} virtual servers)"
    )
    return EX_OK
