"""The offline subcommands: each reads files or the kernel, none runs the daemon."""
