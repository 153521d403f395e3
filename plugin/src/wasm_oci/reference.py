"""Image references (`[oci://]host[:port]/repo[:tag][@sha256:hex]`) and the URLs a policy pins. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Reference", "ReferenceError", "DOCKER_HUB_HOST"]

DOCKER_HUB_HOST = "docker.io"
_DOCKER_HUB_API_HOST = "registry-1.docker.io"
# Grammar from the distribution reference spec, reduced to what a Wasm plugin reference needs.
_REPO_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPO_RE = re.compile(rf"^{_REPO_COMPONENT}(?:/{_REPO_COMPONENT})*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")


class ReferenceError(ValueError):
    """The string is not an image reference; the message says which part is wrong."""


@dataclass(frozen=True)
class Reference:
    registry: str  # host[:port] as the user wrote it (docker.io for Docker Hub)
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        raw = text.strip()
        if raw.startswith("oci://"):
            raw = raw[len("oci://") :]
        if "://" in raw:
            raise ReferenceError(f"{text!r}: only oci:// (or no scheme) names an image")
        digest: str | None = None
        if "@" in raw:
            raw, digest = raw.split("@", 1)
            if not _DIGEST_RE.match(digest):
                raise ReferenceError(f"{text!r}: digest must be sha256:<64 hex digits>")
        first, _, rest = raw.partition("/")
        if rest and ("." in first or ":" in first or first == "localhost"):
            registry, path = first, rest
        else:
            registry, path = DOCKER_HUB_HOST, raw
            if "/" not in path:
                path = "library/" + path
        tag: str | None = None
        last_slash = path.rfind("/")
        if ":" in path[last_slash + 1 :]:
            path, tag = path.rsplit(":", 1)
            if not _TAG_RE.match(tag):
                raise ReferenceError(f"{text!r}: invalid tag {tag!r}")
        if not path or not _REPO_RE.match(path):
            raise ReferenceError(f"{text!r}: invalid repository {path!r} (lower-case letters, digits, . _ - /)")
        if tag is None and digest is None:
            raise ReferenceError(f"{text!r}: give a tag (:1.0.0) or a digest (@sha256:...)")
        return cls(registry=registry, repository=path, tag=tag, digest=digest)

    @property
    def api_host(self) -> str:
        """Where the distribution API lives (Docker Hub's differs from its name)."""
        return _DOCKER_HUB_API_HOST if self.registry == DOCKER_HUB_HOST else self.registry

    @property
    def host_without_port(self) -> str:
        host = self.registry
        if host.startswith("["):
            return host[1 : host.index("]")]
        return host.rsplit(":", 1)[0] if host.count(":") == 1 else host

    @property
    def manifest_reference(self) -> str:
        """What goes after /manifests/: the digest when pinned, else the tag."""
        return self.digest or self.tag or ""

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.registry, self.repository, self.tag, digest)

    def pinned_url(self, digest: str) -> str:
        """The `oci://` URL that pins `digest`, for TokenUsagePolicy `pluginImage` or WasmPlugin `url`."""
        return f"oci://{self.registry}/{self.repository}@{digest}"

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text
