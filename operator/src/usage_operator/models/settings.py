"""Operator settings: environment variables `TOKENUSAGE_OPERATOR_<FIELD>` (or CLI flags)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["DEFAULT_PLUGIN_IMAGE", "OperatorSettings"]

# The plugin image this release was built with (the release workflow pushes it).
DEFAULT_PLUGIN_IMAGE = "oci://ghcr.io/gpustack/gpustack-token-usage-plugin:0.1.0"


class OperatorSettings(BaseSettings):
    """How the operator runs. One docstring per field: meaning, unit, default and why."""

    model_config = SettingsConfigDict(env_prefix="TOKENUSAGE_OPERATOR_", extra="ignore", frozen=True)

    gateway_namespace: str = Field(
        default="higress-system", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63
    )
    """Namespace the WasmPlugins are written to. Higress only reads WasmPlugins from its own
    namespace (default `higress-system`). Policies in every watched namespace map into it, so
    conflicts between policies are decided across all of them."""

    default_plugin_image: str = DEFAULT_PLUGIN_IMAGE
    """Plugin module URL used when a policy has no `pluginImage`. A `@sha256:` digest in it
    also pins the module."""

    watched_namespaces: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Namespaces whose policies are handled; empty means all (cluster-wide). Comma-separated
    in the environment. Needs no access to the Namespace kind either way."""

    metrics_port: int = Field(default=9090, ge=0, le=65535)
    """Port of the Prometheus `/metrics` endpoint (0: no endpoint)."""

    metrics_host: str = "0.0.0.0"
    """Address the metrics endpoint listens on."""

    liveness_port: int = Field(default=8080, ge=0, le=65535)
    """Port of kopf's liveness endpoint `/healthz` (0: no endpoint)."""

    liveness_host: str = "0.0.0.0"
    """Address the liveness endpoint listens on."""

    log_format: Literal["json", "text"] = "json"
    """`json`: one JSON object per line (for log collectors); `text`: for people."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Lowest level logged."""

    retry_backoff_seconds: float = Field(default=2.0, gt=0, le=600)
    """First delay before retrying a failed API call (409s, 5xx, timeouts); doubled per try up
    to `retry_backoff_max_seconds`."""

    retry_backoff_max_seconds: float = Field(default=60.0, gt=0, le=3600)
    """Longest delay between retries of one object."""

    workers: int = Field(default=8, ge=1, le=256)
    """Threads running reconciles at once (the Kubernetes client is blocking)."""

    resync_seconds: float = Field(default=300.0, ge=1.0, le=86400.0)
    """How often every policy is compared with the live WasmPlugin fetched from the API (not
    the watch cache): repairs changes whose watch events were lost, e.g. while the API server
    restarted. Read from the environment when the operator starts (no CLI flag)."""

    kubeconfig: str | None = None
    """Kubeconfig path; unset: in-cluster credentials, else $KUBECONFIG or ~/.kube/config,
    read when the operator logs in (not at import)."""

    post_events: bool = True
    """Post Kubernetes Events on the policy (Applied, InvalidConfig, Conflict, ApplyFailed).
    Failures to post are logged and ignored (some API servers do not serve Events)."""

    peering: bool = False
    """Use kopf peering (needs the KopfPeering CRDs) to keep a single active replica; off:
    standalone, run one replica."""

    @field_validator("watched_namespaces", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value
