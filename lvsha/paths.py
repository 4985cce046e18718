"""Default paths, apart so that `lvsha status` can start without the config parser."""

DEFAULT_CONFIG_PATH = "/etc/lvsha.toml"
DEFAULT_CONTROL_SOCKET = "/run/lvsha/lvsha.sock"
