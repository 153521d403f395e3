"""The only module that talks to a registry: a small OCI distribution API client.

Why not oras-py: its errors do not say which of auth, network, or a missing tag went wrong, and
its login writes ~/.docker/config.json. This client speaks the few endpoints we need (ping, blob
HEAD/upload/GET, manifest HEAD/GET/PUT) with Basic and Bearer-token auth, and maps every failure
to one `RegistryError` subclass with a one-line message.

Scheme: HTTPS, except loopback hosts (localhost, 127.0.0.0/8, ::1) which default to plain HTTP as
Docker does (unless `verify_tls=False` asks for TLS without verification); `plain_http` overrides.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import requests
import urllib3

from wasm_oci.credentials import Credentials
from wasm_oci.manifest import (
    MANIFEST_MEDIA_TYPES,
    MEDIA_TYPE_DOCKER_MANIFEST_LIST,
    MEDIA_TYPE_OCI_INDEX,
    Blob,
    Image,
    sha256_digest,
)
from wasm_oci.reference import Reference

__all__ = [
    "RegistryError",
    "RegistryUnreachableError",
    "RegistryAuthError",
    "NotFoundError",
    "TagConflictError",
    "RegistryClient",
    "PushResult",
    "Manifest",
    "push_image",
    "fetch_manifest",
]

_CHALLENGE_PARAM_RE = re.compile(r'(\w+)="([^"]*)"')
_LOGIN_HINT = (
    "pass --username/--password, set TOKENUSAGE_REGISTRY_USERNAME/PASSWORD, or add it to ~/.docker/config.json"
)


class RegistryError(Exception):
    """Any registry failure; str() is the one line the CLI prints."""


class RegistryUnreachableError(RegistryError):
    pass


class RegistryAuthError(RegistryError):
    pass


class NotFoundError(RegistryError):
    pass


class TagConflictError(RegistryError):
    pass


@dataclass(frozen=True)
class Manifest:
    raw: bytes
    media_type: str
    digest: str

    def json(self) -> dict[str, Any]:
        data = json.loads(self.raw)
        if not isinstance(data, dict):
            raise RegistryError(f"manifest {self.digest} is not a JSON object")
        return data


@dataclass(frozen=True)
class PushResult:
    reference: Reference
    digest: str
    status: str  # "pushed" | "unchanged" | "overwritten"
    blobs_uploaded: int


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RegistryClient:
    """One registry host. Remembers the auth header that worked, per repository scope."""

    def __init__(
        self,
        reference: Reference,
        *,
        credentials: Credentials | None = None,
        plain_http: bool | None = None,
        verify_tls: bool = True,
        timeout_s: float = 30.0,
    ) -> None:
        self._ref = reference
        self._credentials = credentials
        if plain_http is None:  # loopback speaks HTTP (as Docker assumes) unless TLS was asked for
            plain_http = verify_tls and _is_loopback(reference.host_without_port)
        use_http = plain_http
        self._base = f"{'http' if use_http else 'https'}://{reference.api_host}"
        self._verify_tls = verify_tls
        if not verify_tls:  # asked for explicitly (--insecure): no warning per request
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self._timeout_s = timeout_s
        self._session = requests.Session()
        self._session.headers["User-Agent"] = "tokenusage-wasm-oci"
        self._auth_header: str | None = None

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- transport and auth ------------------------------------------------------------------

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if self._auth_header:
            headers["Authorization"] = self._auth_header
        try:
            return self._session.request(
                method, url, headers=headers, timeout=self._timeout_s, verify=self._verify_tls, **kwargs
            )
        except requests.exceptions.SSLError as exc:
            raise RegistryUnreachableError(
                f"TLS to {self._ref.registry} failed ({_short(exc)}); for an HTTP registry use --plain-http,"
                " for a self-signed certificate --insecure"
            ) from exc
        except requests.exceptions.ConnectionError as exc:
            raise RegistryUnreachableError(f"cannot reach registry {self._base}: {_short(exc)}") from exc
        except requests.exceptions.Timeout as exc:
            raise RegistryUnreachableError(f"registry {self._base} timed out after {self._timeout_s:g} s") from exc

    def _request(self, method: str, path_or_url: str, **kwargs: Any) -> requests.Response:
        url = path_or_url if "://" in path_or_url else self._base + path_or_url
        response = self._send(method, url, **kwargs)
        if response.status_code == 401:
            self._authenticate(response)
            response = self._send(method, url, **kwargs)
            if response.status_code == 401:
                who = f"user {self._credentials.username!r}" if self._credentials else "anonymous access"
                raise RegistryAuthError(f"authentication failed at {self._ref.registry} for {who}: {_reason(response)}")
        if response.status_code == 403:
            raise RegistryAuthError(f"access denied at {self._ref.registry} ({method} {_path(url)}): {_reason(response)}")
        return response

    def _authenticate(self, challenge: requests.Response) -> None:
        header = challenge.headers.get("WWW-Authenticate", "")
        scheme, _, params_text = header.partition(" ")
        params = dict(_CHALLENGE_PARAM_RE.findall(params_text))
        creds = self._credentials
        if scheme.lower() == "basic":
            if creds is None:
                raise RegistryAuthError(f"{self._ref.registry} requires a login: {_LOGIN_HINT}")
            token = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
            self._auth_header = f"Basic {token}"
            return
        if scheme.lower() != "bearer" or "realm" not in params:
            raise RegistryAuthError(f"{self._ref.registry} asked for unsupported auth {header!r}")
        query = {"service": params.get("service", "")}
        # Ask for pull+push on our repository: the server grants what the account may do.
        query["scope"] = f"repository:{self._ref.repository}:pull,push"
        auth = (creds.username, creds.password) if creds else None
        try:
            token_response = self._session.get(
                params["realm"], params=query, auth=auth, timeout=self._timeout_s, verify=self._verify_tls
            )
        except requests.exceptions.RequestException as exc:
            raise RegistryUnreachableError(f"cannot reach token service {params['realm']}: {_short(exc)}") from exc
        if token_response.status_code in (401, 403):
            if creds is None:
                raise RegistryAuthError(f"{self._ref.registry} requires a login: {_LOGIN_HINT}")
            raise RegistryAuthError(
                f"authentication failed at {self._ref.registry} for user {creds.username!r}: token service refused"
            )
        if token_response.status_code != 200:
            raise RegistryAuthError(f"token service of {self._ref.registry} answered {token_response.status_code}")
        body = token_response.json()
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryAuthError(f"token service of {self._ref.registry} returned no token")
        self._auth_header = f"Bearer {token}"

    # -- API ---------------------------------------------------------------------------------

    def ping(self) -> None:
        """GET /v2/: proves the host is a registry and the credentials work (when it asks for them)."""
        response = self._request("GET", "/v2/")
        if response.status_code != 200:
            hint = ""
            if self._base.startswith("http://") and "HTTPS" in response.text:
                hint = "; it speaks HTTPS: use --insecure for a self-signed certificate (loopback defaults to HTTP)"
            raise RegistryError(
                f"{self._base} does not answer as an OCI registry (GET /v2/ -> {response.status_code}){hint}"
            )

    def head_manifest(self, reference: str) -> str | None:
        """The digest a tag or digest currently names, or None if the registry does not have it."""
        repo = self._ref.repository
        response = self._request(
            "HEAD", f"/v2/{repo}/manifests/{reference}", headers={"Accept": ", ".join(MANIFEST_MEDIA_TYPES)}
        )
        if response.status_code == 404:
            return None
        _expect(response, 200, f"look up {self._ref.registry}/{repo}:{reference}")
        digest = response.headers.get("Docker-Content-Digest")
        if digest:
            return digest
        return self.get_manifest(reference).digest

    def get_manifest(self, reference: str) -> Manifest:
        repo = self._ref.repository
        response = self._request(
            "GET", f"/v2/{repo}/manifests/{reference}", headers={"Accept": ", ".join(MANIFEST_MEDIA_TYPES)}
        )
        if response.status_code == 404:
            raise NotFoundError(f"{self._ref.registry}/{repo}: no manifest {reference!r} (check the tag/digest)")
        _expect(response, 200, f"get manifest {reference}")
        raw = response.content
        digest = sha256_digest(raw)
        if reference.startswith("sha256:") and digest != reference:
            raise RegistryError(f"registry returned a manifest with digest {digest}, asked for {reference}")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return Manifest(raw=raw, media_type=media_type, digest=digest)

    def blob_exists(self, digest: str) -> bool:
        response = self._request("HEAD", f"/v2/{self._ref.repository}/blobs/{digest}")
        if response.status_code == 404:
            return False
        _expect(response, 200, f"check blob {digest}")
        return True

    def upload_blob(self, blob: Blob) -> bool:
        """Upload unless present; True when bytes were sent. Monolithic POST-then-PUT upload."""
        if self.blob_exists(blob.digest):
            return False
        repo = self._ref.repository
        start = self._request("POST", f"/v2/{repo}/blobs/uploads/")
        _expect(start, 202, f"start upload to {repo}")
        location = start.headers.get("Location")
        if not location:
            raise RegistryError(f"registry gave no upload location for {repo}")
        url = urljoin(self._base + "/", location)
        url += ("&" if "?" in url else "?") + f"digest={blob.digest}"
        done = self._request(
            "PUT", url, data=blob.data, headers={"Content-Type": "application/octet-stream"}
        )
        _expect(done, 201, f"upload blob {blob.digest}")
        return True

    def get_blob(self, descriptor: dict[str, Any]) -> bytes:
        digest = str(descriptor.get("digest", ""))
        response = self._request("GET", f"/v2/{self._ref.repository}/blobs/{digest}")
        if response.status_code == 404:
            raise NotFoundError(f"{self._ref.registry}/{self._ref.repository}: blob {digest} is missing")
        _expect(response, 200, f"get blob {digest}")
        data = response.content
        if sha256_digest(data) != digest:
            raise RegistryError(f"blob {digest} arrived with digest {sha256_digest(data)}")
        size = descriptor.get("size")
        if isinstance(size, int) and size != len(data):
            raise RegistryError(f"blob {digest} is {len(data)} bytes, manifest says {size}")
        return data

    def put_manifest(self, reference: str, image: Image) -> str:
        response = self._request(
            "PUT",
            f"/v2/{self._ref.repository}/manifests/{reference}",
            data=image.manifest_bytes,
            headers={"Content-Type": image.media_type},
        )
        _expect(response, 201, f"put manifest {self._ref.repository}:{reference}")
        return response.headers.get("Docker-Content-Digest") or image.digest


def _short(exc: Exception) -> str:
    text = str(exc)
    # urllib3 buries the root cause ("[Errno 111] Connection refused") in nested reprs.
    errno = re.search(r"\[Errno -?\d+\] ([^)'\"]+)", text)
    if errno:
        return errno.group(1).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _path(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[-1].split("?")[0]


def _reason(response: requests.Response) -> str:
    try:
        errors = response.json().get("errors") or []
        if errors:
            first = errors[0]
            return f"{first.get('code', '')} {first.get('message', '')}".strip()
    except ValueError:
        pass
    return f"HTTP {response.status_code}"


def _expect(response: requests.Response, status: int, what: str) -> None:
    if response.status_code != status:
        raise RegistryError(f"could not {what}: {response.status_code} {_reason(response)}")


def push_image(client: RegistryClient, ref: Reference, image: Image, *, force: bool = False) -> PushResult:
    """Push blobs then the manifest under ref's tag (or its digest).

    Tag policy: a tag that already names the same manifest is left alone ("unchanged"); a tag
    that names a different manifest is refused with TagConflictError unless `force`. The check
    and the PUT are two requests, so two concurrent pushes can still race.
    """
    client.ping()
    if ref.digest and ref.digest != image.digest:
        raise TagConflictError(f"{ref} pins {ref.digest}, but the built image is {image.digest}")
    status = "pushed"
    if ref.tag:
        current = client.head_manifest(ref.tag)
        if current == image.digest:
            return PushResult(ref.with_digest(image.digest), image.digest, "unchanged", 0)
        if current is not None:
            if not force:
                raise TagConflictError(
                    f"{ref.registry}/{ref.repository}:{ref.tag} already names {current}, not {image.digest};"
                    " use a new tag, or --force to move the tag"
                )
            status = "overwritten"
    uploaded = sum(client.upload_blob(blob) for blob in image.blobs())
    digest = client.put_manifest(ref.tag or image.digest, image)
    if digest != image.digest:
        raise RegistryError(f"registry stored the manifest as {digest}, expected {image.digest}")
    return PushResult(ref.with_digest(image.digest), image.digest, status, uploaded)


def fetch_manifest(client: RegistryClient, ref: Reference, *, platform: str = "linux/amd64") -> Manifest:
    """The image manifest `ref` names; an index is resolved to `platform` as go-containerregistry does."""
    manifest = client.get_manifest(ref.manifest_reference)
    body = manifest.json()
    media_type = body.get("mediaType") or manifest.media_type
    if media_type in (MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_DOCKER_MANIFEST_LIST):
        want_os, want_arch = platform.split("/", 1)
        for entry in body.get("manifests", []):
            plat = entry.get("platform") or {}
            if plat.get("os") == want_os and plat.get("architecture") == want_arch:
                return client.get_manifest(str(entry["digest"]))
        raise NotFoundError(f"{ref}: image index has no {platform} manifest")
    return manifest
