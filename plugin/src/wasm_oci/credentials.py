"""Registry credentials: flags, then environment, then the Docker config file (`auths` entries).

Credential helpers (`credsStore`, `credHelpers`) are not run: log in with a plain `auths` entry, or
pass --username/--password or TOKENUSAGE_REGISTRY_USERNAME/TOKENUSAGE_REGISTRY_PASSWORD.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Credentials", "ENV_USERNAME", "ENV_PASSWORD", "docker_config_path", "resolve_credentials"]

ENV_USERNAME = "TOKENUSAGE_REGISTRY_USERNAME"
ENV_PASSWORD = "TOKENUSAGE_REGISTRY_PASSWORD"
_DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)
    source: str = ""  # where they came from, for error messages (never the secret itself)


def docker_config_path(env: Mapping[str, str]) -> Path:
    base = env.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def _from_docker_config(registry: str, path: Path) -> Credentials | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    auths = data.get("auths") if isinstance(data, dict) else None
    if not isinstance(auths, dict):
        return None
    keys = [registry, f"https://{registry}", f"http://{registry}", f"https://{registry}/v1/"]
    if registry in _DOCKER_HUB_KEYS:
        keys += list(_DOCKER_HUB_KEYS)
    for key in keys:
        entry = auths.get(key)
        if not isinstance(entry, dict):
            continue
        if entry.get("auth"):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                continue
            return Credentials(user, password, f"{path} ({key})")
        if entry.get("username") and entry.get("password"):
            return Credentials(str(entry["username"]), str(entry["password"]), f"{path} ({key})")
    return None


def resolve_credentials(
    registry: str,
    *,
    username: str | None,
    password: str | None,
    env: Mapping[str, str] | None = None,
) -> Credentials | None:
    """The first complete user/password pair from flags, environment, Docker config; None = anonymous."""
    env = os.environ if env is None else env
    if username is not None or password is not None:
        return Credentials(username or "", password or "", "--username/--password")
    if env.get(ENV_USERNAME) or env.get(ENV_PASSWORD):
        return Credentials(env.get(ENV_USERNAME, ""), env.get(ENV_PASSWORD, ""), f"${ENV_USERNAME}/${ENV_PASSWORD}")
    return _from_docker_config(registry, docker_config_path(env))
