"""The daemon: the only package that runs an event loop (docs/architecture.md)."""
