"""Exit codes of every `lvsha` command, in one place (sysexits.h).

`lvsha run`, `check-config`, `cleanup`, `reload`, `doctor` and
`import-keepalived` all exit 78 (EX_CONFIG) on a configuration they cannot
use, so that a script or systemd tells a bad file from a broken host.
"""

from __future__ import annotations

EX_OK = 0
EX_FAILURE = 1  # a runtime failure; for `lvsha doctor`: at least one FAIL
EX_WARNINGS = 2  # `lvsha doctor` only: warnings, no FAIL
EX_USAGE = 64
EX_UNAVAILABLE = 69  # no daemon answers on the control socket
EX_CANTCREAT = 73  # an output file cannot be written
EX_NOPERM = 77
EX_CONFIG = 78
