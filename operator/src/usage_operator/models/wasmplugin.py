"""The Higress WasmPlugin (extensions.higress.io/v1alpha1) the operator renders.

Only the subset the operator writes. `extra="forbid"` keeps `pluginConfig` (which would override
defaultConfig/matchRules) and typos out; the validators encode Higress's own rules.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .policy import FailStrategy, ImagePullPolicy, Phase

__all__ = ["MatchRule", "ObjectMeta", "WasmPlugin", "WasmPluginSpec"]

_DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


class ObjectMeta(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_DNS1123_SUBDOMAIN, max_length=63)
    namespace: str = Field(pattern=_DNS1123_SUBDOMAIN, max_length=63)
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class MatchRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ingress: list[str] = Field(default_factory=list)
    domain: list[str] = Field(default_factory=list)
    service: list[str] = Field(default_factory=list)
    config: dict[str, Any]
    config_disable: bool | None = Field(default=None, alias="configDisable")

    @model_validator(mode="after")
    def _has_target(self) -> MatchRule:
        if not (self.ingress or self.domain or self.service):
            raise ValueError("a match rule needs at least one ingress, domain or service")
        return self


class WasmPluginSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    url: str = Field(min_length=1)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    image_pull_policy: ImagePullPolicy | None = Field(default=None, alias="imagePullPolicy")
    image_pull_secret: str | None = Field(default=None, alias="imagePullSecret")
    phase: Phase
    priority: int = Field(ge=-(2**31), le=2**31 - 1)
    fail_strategy: FailStrategy = Field(alias="failStrategy")
    default_config: dict[str, Any] | None = Field(default=None, alias="defaultConfig")
    default_config_disable: bool | None = Field(default=None, alias="defaultConfigDisable")
    match_rules: list[MatchRule] = Field(default_factory=list, alias="matchRules")

    @model_validator(mode="after")
    def _one_placement(self) -> WasmPluginSpec:
        gateway_wide = self.default_config is not None and not self.default_config_disable
        targeted = self.default_config_disable is True and bool(self.match_rules)
        if gateway_wide == targeted:
            raise ValueError(
                "either defaultConfig (gateway-wide) or defaultConfigDisable: true with matchRules"
            )
        if gateway_wide and self.match_rules:
            raise ValueError("a gateway-wide plugin has no matchRules")
        return self


class WasmPlugin(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    api_version: Literal["extensions.higress.io/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["WasmPlugin"]
    metadata: ObjectMeta
    spec: WasmPluginSpec

    def plugin_configs(self) -> list[dict[str, Any]]:
        """Every plugin configuration this WasmPlugin hands to the module."""
        configs = [rule.config for rule in self.spec.match_rules]
        if self.spec.default_config is not None:
            configs.append(self.spec.default_config)
        return configs

