"""The training config's schema (types, in Hydra's ConfigStore) and its checks (values, choices from the registries)."""
from reid.config.validate import ConfigError, ineffective_settings, validate_config

__all__ = ["ConfigError", "ineffective_settings", "validate_config"]
