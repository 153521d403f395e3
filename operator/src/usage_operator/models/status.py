"""TokenUsagePolicy status: the Ready condition, what was applied and where."""

from __future__ import annotations

from enum import Enum
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Condition", "ConditionStatus", "PolicyStatus", "READY", "Reason", "WasmPluginRef"]

READY: Final = "Ready"


class ConditionStatus(str, Enum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Reason(str, Enum):
    """Why Ready has its value. Also the policy's state in the `policies` metric."""

    APPLIED = "Applied"  # the WasmPlugin is live and matches the spec
    INVALID_CONFIG = "InvalidConfig"  # the spec cannot be rendered; fix it (no retry)
    CONFLICT = "Conflict"  # an older policy claims the same targets; this one waits
    APPLY_FAILED = "ApplyFailed"  # the API refused or failed; retried with backoff


class Condition(BaseModel):
    """A metav1.Condition."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    type: str = Field(max_length=316, description="Condition type, e.g. Ready.")
    status: ConditionStatus
    reason: str = Field(max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    message: str = Field(default="", max_length=32768)
    observed_generation: int | None = Field(default=None, alias="observedGeneration", ge=0)
    last_transition_time: str = Field(
        alias="lastTransitionTime", description="RFC 3339 time the status last changed."
    )


class WasmPluginRef(BaseModel):
    model_config = ConfigDict(frozen=True)

    namespace: str = Field(max_length=63)
    name: str = Field(max_length=253)


class PolicyStatus(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=8,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    observed_generation: int | None = Field(
        default=None, alias="observedGeneration", ge=0, description="metadata.generation last acted on."
    )
    wasm_plugin: WasmPluginRef | None = Field(
        default=None, alias="wasmPlugin", description="The WasmPlugin this policy owns, when applied."
    )
    applied_hash: str | None = Field(
        default=None,
        alias="appliedHash",
        max_length=64,
        description="sha256 of the WasmPlugin spec last applied (hex, 16 characters).",
    )
