"""`lvsha import-keepalived`: keepalived.conf -> lvsha TOML (reader, translator, writer)."""
