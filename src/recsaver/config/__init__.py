"""Experiment configs: frozen dataclasses read from YAML, `--set a.b=c` overrides, a stable hash.

A config file is checked strictly: an unknown key, a value of the wrong type or a
value outside its allowed set is an error that names the file, the line and the
dotted key (or the `--set` argument it came from), so a typo never silently falls
back to a default. Overrides are typed by the dataclass field they land on.

Relative paths in a config (data dumps, prepared folders, `out`, `cache`) are read
from the directory the command runs in, like every other path on the command line.

The package: `settings` (the dataclasses), `loading` (YAML, typed build), `overrides`
(`--set`), `fields` (field types), `validation` (value checks), `hashing` (config_dict, config_hash).
"""

from .hashing import config_dict, config_hash
from .loading import load_config
from .schema import METHODS
from .settings import (
    TABLES,
    ConfigError,
    DistillSettings,
    DomainSpec,
    ExperimentConfig,
    PredictSettings,
    PrepareSettings,
    ReferenceSettings,
    ScoreSettings,
    SignificanceSettings,
)

__all__ = [
    "METHODS", "TABLES", "ConfigError", "DistillSettings", "DomainSpec", "ExperimentConfig", "PredictSettings",
    "PrepareSettings", "ReferenceSettings", "ScoreSettings", "SignificanceSettings", "config_dict", "config_hash",
    "load_config",
]
