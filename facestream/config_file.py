"""The settings file: YAML or TOML named by ``FACESTREAM_CONFIG`` (or ``--config``), read as a pydantic-settings
source below keyword arguments and ``FACESTREAM_*`` variables (:class:`facestream.config.Settings`)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import yaml
from pydantic_settings import PydanticBaseSettingsSource

from facestream.errors import ConfigError

CONFIG_ENV = "FACESTREAM_CONFIG"


class FileSource(PydanticBaseSettingsSource):
    """Reads the YAML or TOML file named by FACESTREAM_CONFIG (keys are the field names)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get(CONFIG_ENV)
        return read_config_file(Path(path)) if path else {}


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a YAML or TOML config file into a dict, with a clear error for a bad file."""
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    text = path.read_text()
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"config file {path} is not valid {'TOML' if path.suffix == '.toml' else 'YAML'}: {e}")
    data = data or {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of setting: value")
    return data.get("facestream", data)
