"""Declarative attribute mappings: SCIM resources to backend fields and back, purely.

A mapping is a TOML file (presets ship next to this module); `load_mapping` checks it
whole and returns the typed Mapping the bridge and the connectors work from.
"""

from .announce import AnnouncedAttribute
from .errors import MappingError, TranslationError, UntranslatableFilter
from .loader import load_mapping, preset_names, toml_text
from .model import Mapping, ResourceMapping

__all__ = [
    "AnnouncedAttribute",
    "Mapping",
    "MappingError",
    "ResourceMapping",
    "TranslationError",
    "UntranslatableFilter",
    "load_mapping",
    "preset_names",
    "toml_text",
]
