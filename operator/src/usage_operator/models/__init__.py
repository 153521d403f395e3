"""Pydantic models: the TokenUsagePolicy spec and status, the WasmPlugin, operator settings.

Imports nothing else from the package; everything else imports from here.
"""

from .policy import (
    DEFAULT_PRIORITY,
    PLUGIN_CONFIG_KEYS,
    FailStrategy,
    ImagePullPolicy,
    Phase,
    PolicySpec,
    Targets,
    image_digest,
)
from .resources import *  # noqa: F403  (API names and label keys)
from .resources import __dict__ as _resources_names
from .settings import DEFAULT_PLUGIN_IMAGE, OperatorSettings
from .status import READY, Condition, ConditionStatus, PolicyStatus, Reason, WasmPluginRef
from .wasmplugin import MatchRule, ObjectMeta, WasmPlugin, WasmPluginSpec

__all__ = [
    "DEFAULT_PLUGIN_IMAGE",
    "DEFAULT_PRIORITY",
    "PLUGIN_CONFIG_KEYS",
    "READY",
    "Condition",
    "ConditionStatus",
    "FailStrategy",
    "ImagePullPolicy",
    "MatchRule",
    "ObjectMeta",
    "OperatorSettings",
    "Phase",
    "PolicySpec",
    "PolicyStatus",
    "Reason",
    "Targets",
    "WasmPlugin",
    "WasmPluginRef",
    "WasmPluginSpec",
    "image_digest",
] + [name for name in _resources_names if name.isupper()]
