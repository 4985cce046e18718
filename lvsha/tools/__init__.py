"""The subcommands that run once and exit, each in its own module.

Offline: check-config, realserver, doctor (with its firewall evaluator),
import-keepalived (reader, translator, writer). Clients of the running
daemon's control socket: status and reload (through `ask`). None starts an
event loop or imports the daemon's runtime.
"""
