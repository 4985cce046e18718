"""The subcommands that run once and exit, each in its own module.

Offline: check-config, cleanup (after a crash, from the daemon's VIP
record), realserver, doctor (with its firewall evaluator), import-keepalived
(reader, translator, writer). Clients of the running daemon's control
socket: status and reload (through `ask`). None starts an event loop of its
own for long or imports the daemon's runtime.
"""
