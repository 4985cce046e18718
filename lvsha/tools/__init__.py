"""The offline subcommands: check-config, realserver, doctor, import-keepalived.

Each runs once and exits; none starts the daemon's event loop, and none
imports `lvsha.runtime` (or `lvsha.daemon`).
"""
