"""TokenUsagePolicy spec: the plugin's configuration keys plus where and how to load the plugin.

The plugin's own config module (`usage_filter.core.config`) is the source of truth for the keys,
their defaults, bounds and the header-name rules; this model takes them from there. Every
constraint that the API server can enforce is also emitted into the CRD (see `crd.py`): regex
patterns, enums, bounds and CEL rules in `x-kubernetes-validations`. The patterns are written in
the subset shared by RE2 (API server), Rust regex (pydantic) and Python `re`.
"""

from __future__ import annotations

import json
import re
from enum import Enum
from typing import Annotated, Any, Final

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from usage_filter.core.config import (
    FIELDS,
    HEADER_NAME_RE,
    REAL_IP_ALIAS,
    RESERVED_HEADERS,
)

__all__ = [
    "DEFAULT_PRIORITY",
    "FailStrategy",
    "ImagePullPolicy",
    "Phase",
    "PLUGIN_CONFIG_KEYS",
    "PolicySpec",
    "Targets",
    "image_digest",
]

_FIELD = {f.key: f for f in FIELDS}
# The plugin config keys this spec carries (the alias included): every one the plugin knows.
PLUGIN_CONFIG_KEYS: Final = tuple(f.key for f in FIELDS) + (REAL_IP_ALIAS,)

DEFAULT_PRIORITY: Final = 910
_INT32_MIN: Final = -(2**31)
_INT32_MAX: Final = 2**31 - 1

# Header names: the plugin's RFC 9110 token rule, bounded so CEL cost estimation passes.
_HEADER_MAX_LENGTH: Final = 128
_RESERVED_SORTED: Final = sorted(RESERVED_HEADERS)
_HEADER_RESERVED_RULE: Final = {
    "rule": "!(self.lowerAscii() in " + repr(_RESERVED_SORTED).replace("'", '"') + ")",
    "message": "must not be one of " + ", ".join(_RESERVED_SORTED) + " (they frame the request)",
}
HeaderName = Annotated[
    str,
    StringConstraints(pattern=HEADER_NAME_RE.pattern, min_length=1, max_length=_HEADER_MAX_LENGTH),
]

# Path suffixes: starts with '/', at least one more character, no trailing '/', no '?', '#',
# space, tab, CR or LF (what the plugin's parser refuses).
_SUFFIX_PATTERN: Final = r"^/[^?# \t\r\n]*[^?# \t\r\n/]$"
_SUFFIX_MAX_LENGTH: Final = 256
_SUFFIXES_MAX_ITEMS: Final = 64
PathSuffix = Annotated[
    str, StringConstraints(pattern=_SUFFIX_PATTERN, min_length=2, max_length=_SUFFIX_MAX_LENGTH)
]

# Plugin image: oci:// (optionally pinned by @sha256:<64 hex>), http(s):// or file://.
_IMAGE_PATTERN: Final = (
    r"^(oci://[^@ \t\r\n]+(@sha256:[0-9a-f]{64})?|https?://[^ \t\r\n]+|file:///?[^ \t\r\n]+)$"
)
_IMAGE_DIGEST_RE: Final = re.compile(r"@sha256:([0-9a-f]{64})$")
ImageUrl = Annotated[str, StringConstraints(pattern=_IMAGE_PATTERN, max_length=1024)]

# Secret names are DNS-1123 subdomains.
_DNS1123_SUBDOMAIN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SecretName = Annotated[str, StringConstraints(pattern=_DNS1123_SUBDOMAIN, max_length=253)]

# Higress match targets. Ingress: "[namespace/]name"; domain: host name, optionally "*." wildcard;
# service: "name[.namespace[.svc...]][:port]". Lower case: Higress compares them as written.
_LABEL: Final = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_INGRESS_PATTERN: Final = rf"^({_LABEL}/)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
_DOMAIN_PATTERN: Final = rf"^(\*\.)?{_LABEL}(\.{_LABEL})*$"
_SERVICE_PATTERN: Final = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]{1,5})?$"
_TARGETS_MAX_ITEMS: Final = 256
IngressName = Annotated[str, StringConstraints(pattern=_INGRESS_PATTERN, max_length=317)]
DomainName = Annotated[str, StringConstraints(pattern=_DOMAIN_PATTERN, max_length=253)]
ServiceName = Annotated[str, StringConstraints(pattern=_SERVICE_PATTERN, max_length=259)]


# What each pattern means, for people: a refused value is explained with these, not the regex.
_PATTERN_HINTS: Final = {
    HEADER_NAME_RE.pattern: "a header name (an RFC 9110 token: letters, digits and !#$%&'*+-.^_`|~)",
    _SUFFIX_PATTERN: "a path suffix: starts with '/', no '?', '#', whitespace or trailing '/'",
    _IMAGE_PATTERN: "oci://REPOSITORY[:TAG][@sha256:DIGEST], http(s)://URL or file://PATH",
    _DNS1123_SUBDOMAIN: "a DNS-1123 name (lower-case letters, digits, '-' and '.')",
    _INGRESS_PATTERN: "an ingress name, [namespace/]name, in lower case",
    _DOMAIN_PATTERN: "a lower-case host name, optionally starting with '*.'",
    _SERVICE_PATTERN: "a service, name[.namespace[.svc...]][:port], in lower case",
}


def spec_errors(exc: ValidationError) -> list[str]:
    """One line per problem, each naming the field (`spec.<path>`) and what is allowed."""
    lines = []
    for error in exc.errors():
        loc = ".".join(str(p) for p in error["loc"])
        message = error["msg"]
        pattern = (error.get("ctx") or {}).get("pattern")
        if error["type"] == "string_pattern_mismatch" and pattern in _PATTERN_HINTS:
            message = f"{json.dumps(error['input'])} is not {_PATTERN_HINTS[pattern]}"
        elif message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        lines.append(f"spec.{loc}: {message}" if loc else f"spec: {message}")
    return lines


class ImagePullPolicy(str, Enum):
    IF_NOT_PRESENT = "IfNotPresent"
    ALWAYS = "Always"


class Phase(str, Enum):
    UNSPECIFIED_PHASE = "UNSPECIFIED_PHASE"
    AUTHN = "AUTHN"
    AUTHZ = "AUTHZ"
    STATS = "STATS"


class FailStrategy(str, Enum):
    FAIL_OPEN = "FAIL_OPEN"
    FAIL_CLOSE = "FAIL_CLOSE"


def _set_list(max_items: int) -> dict[str, Any]:
    # A set: the API server refuses duplicates ("Duplicate value").
    return {"x-kubernetes-list-type": "set", "maxItems": max_items}


def _no_duplicates(values: list[str] | None) -> list[str] | None:
    if values is not None:
        seen: set[str] = set()
        for value in values:
            if value in seen:
                raise ValueError(f"duplicate entry {value!r}")
            seen.add(value)
    return values


class Targets(BaseModel):
    """Where the plugin applies. All lists empty: gateway-wide (Higress `defaultConfig`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ingresses: list[IngressName] = Field(
        default_factory=list,
        max_length=_TARGETS_MAX_ITEMS,
        description="Higress routes (Ingress names, optionally 'namespace/name').",
        json_schema_extra=_set_list(_TARGETS_MAX_ITEMS),
    )
    domains: list[DomainName] = Field(
        default_factory=list,
        max_length=_TARGETS_MAX_ITEMS,
        description="Host names (a leading '*.' is a wildcard).",
        json_schema_extra=_set_list(_TARGETS_MAX_ITEMS),
    )
    services: list[ServiceName] = Field(
        default_factory=list,
        max_length=_TARGETS_MAX_ITEMS,
        description="Upstream services as Higress names them, e.g. 'llm.default.svc.cluster.local:80'.",
        json_schema_extra=_set_list(_TARGETS_MAX_ITEMS),
    )

    _unique = field_validator("ingresses", "domains", "services")(_no_duplicates)

    @property
    def gateway_wide(self) -> bool:
        return not (self.ingresses or self.domains or self.services)


def _plugin_field(key: str, **extra: Any) -> Any:
    """A spec field for one plugin config key, with the plugin's bounds and text.

    No default here: an unset key is left out of the rendered configuration, so the plugin
    applies its own default (the one of the plugin version actually loaded).
    """
    info = _FIELD[key]
    description = info.description
    if info.default is not None:
        description += " Default (the plugin's): " + json.dumps(info.default) + "."
    kwargs: dict[str, Any] = {"default": None, "alias": key, "description": description}
    if info.minimum is not None:
        kwargs["ge"] = info.minimum
    if info.maximum is not None:
        kwargs["le"] = info.maximum
    kwargs.update(extra)
    return Field(**kwargs)


class PolicySpec(BaseModel):
    """spec of a TokenUsagePolicy."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.realIPToHeader) || !has(self.realIPHeader) || "
                    "self.realIPToHeader.lowerAscii() == self.realIPHeader.lowerAscii()",
                    "message": "realIPHeader is an alias of realIPToHeader: when both are set "
                    "they must name the same header",
                    "fieldPath": ".realIPHeader",
                    "reason": "FieldValueInvalid",
                }
            ]
        },
    )

    # --- plugin configuration (rendered into defaultConfig / matchRules[].config) ---
    real_ip_to_header: HeaderName | None = _plugin_field(
        "realIPToHeader", json_schema_extra={"x-kubernetes-validations": [_HEADER_RESERVED_RULE]}
    )
    real_ip_header: HeaderName | None = Field(
        default=None,
        alias=REAL_IP_ALIAS,
        description="Alias of realIPToHeader (newer GPUStack configurations use it).",
        json_schema_extra={"x-kubernetes-validations": [_HEADER_RESERVED_RULE]},
    )
    enable_on_path_suffix: list[PathSuffix] | None = _plugin_field(
        "enableOnPathSuffix",
        max_length=_SUFFIXES_MAX_ITEMS,
        json_schema_extra=_set_list(_SUFFIXES_MAX_ITEMS),
    )
    ensure_stream_usage: StrictBool | None = _plugin_field("ensureStreamUsage")
    max_response_body_bytes: StrictInt | None = _plugin_field("maxResponseBodyBytes")
    max_event_bytes: StrictInt | None = _plugin_field("maxEventBytes")

    # --- placement and loading (rendered into the WasmPlugin itself) ---
    plugin_image: ImageUrl | None = Field(
        default=None,
        alias="pluginImage",
        description="Plugin module URL: oci://REGISTRY/REPO[:TAG][@sha256:DIGEST], "
        "http(s)://... or file://... Default: the operator's defaultPluginImage. A digest "
        "also pins the module (WasmPlugin sha256).",
    )
    image_pull_policy: ImagePullPolicy | None = Field(
        default=None,
        alias="imagePullPolicy",
        description="IfNotPresent or Always; unset leaves Higress's default.",
    )
    image_pull_secret: SecretName | None = Field(
        default=None,
        alias="imagePullSecret",
        description="Secret in the gateway namespace with registry credentials.",
    )
    priority: StrictInt = Field(
        default=DEFAULT_PRIORITY,
        ge=_INT32_MIN,
        le=_INT32_MAX,
        description="WasmPlugin priority: higher runs first within a phase.",
        json_schema_extra={"format": "int32"},
    )
    phase: Phase = Field(
        default=Phase.UNSPECIFIED_PHASE, description="Filter chain phase the plugin runs in."
    )
    fail_strategy: FailStrategy = Field(
        default=FailStrategy.FAIL_OPEN,
        alias="failStrategy",
        description="What the gateway does when the plugin cannot be loaded or traps.",
    )
    targets: Targets = Field(
        default_factory=Targets,
        description="Routes, domains or services to apply to; none means gateway-wide.",
    )

    _unique_suffixes = field_validator("enable_on_path_suffix")(_no_duplicates)

    @field_validator("real_ip_to_header", "real_ip_header")
    @classmethod
    def _not_reserved(cls, value: str | None) -> str | None:
        if value is not None and value.lower() in RESERVED_HEADERS:
            raise ValueError(_HEADER_RESERVED_RULE["message"])
        return value

    @model_validator(mode="after")
    def _alias_consistent(self) -> PolicySpec:
        main, alias = self.real_ip_to_header, self.real_ip_header
        if main is not None and alias is not None and main.lower() != alias.lower():
            raise ValueError(
                f"realIPHeader ({alias!r}) is an alias of realIPToHeader ({main!r}): "
                "when both are set they must name the same header"
            )
        return self

    def plugin_config(self) -> dict[str, Any]:
        """The plugin configuration: the keys that are set, the alias folded into realIPToHeader.

        Unset keys are left out so that the plugin applies its own defaults.
        """
        config: dict[str, Any] = {}
        header = self.real_ip_to_header or self.real_ip_header
        if header is not None:
            config["realIPToHeader"] = header
        if self.enable_on_path_suffix is not None:
            config["enableOnPathSuffix"] = list(self.enable_on_path_suffix)
        for key, value in (
            ("ensureStreamUsage", self.ensure_stream_usage),
            ("maxResponseBodyBytes", self.max_response_body_bytes),
            ("maxEventBytes", self.max_event_bytes),
        ):
            if value is not None:
                config[key] = value
        return config


def image_digest(url: str) -> str | None:
    """The hex sha256 pinned in an `oci://...@sha256:<hex>` URL, else None."""
    if not url.startswith("oci://"):
        return None
    match = _IMAGE_DIGEST_RE.search(url)
    return match.group(1) if match else None

