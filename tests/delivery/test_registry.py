"""wasm_oci.registry against a real registry, cross-checked with a second client (skopeo)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from wasm_oci.cli import build_image
from wasm_oci.credentials import Credentials
from wasm_oci.extract import extract_module
from wasm_oci.manifest import MEDIA_TYPE_OCI_MANIFEST, sha256_digest
from wasm_oci.reference import Reference
from wasm_oci.registry import RegistryClient, RegistryUnreachableError, TagConflictError, fetch_manifest, push_image

from .conftest import RunningRegistry

pytestmark = pytest.mark.registry


def _skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("skopeo")
    if binary is None:
        pytest.fail("skopeo not found: install the Debian package skopeo (`make system-deps`)")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120, check=False)


def _creds(reg: RunningRegistry) -> Credentials | None:
    return Credentials(reg.username, reg.password) if reg.username and reg.password else None


@pytest.mark.parametrize("compat", [False, True], ids=["higress", "compat"])
@pytest.mark.parametrize("reg_name", ["registry", "auth_registry"])
def test_skopeo_sees_exactly_what_we_pushed(
    request: pytest.FixtureRequest, reg_name: str, compat: bool, wasm_factory: Callable[..., bytes]
) -> None:
    reg: RunningRegistry = request.getfixturevalue(reg_name)
    ref = Reference.parse(reg.repo("skopeo") + ":1.0.0")
    image = build_image(wasm_factory(f"skopeo-{compat}"), compat=compat, version="1.0.0")
    with RegistryClient(ref, credentials=_creds(reg)) as client:
        result = push_image(client, ref, image)
    assert result.digest == image.digest

    creds = ["--creds", f"{reg.username}:{reg.password}"] if reg.username else []
    raw = _skopeo("inspect", "--raw", "--tls-verify=false", *creds, f"docker://{ref}")
    assert raw.returncode == 0, raw.stderr
    assert raw.stdout.encode() == image.manifest_bytes
    assert sha256_digest(raw.stdout.encode()) == image.digest
    assert json.loads(raw.stdout)["mediaType"] == MEDIA_TYPE_OCI_MANIFEST


def test_skopeo_copy_of_higress_image_extracts_the_module(
    registry: RunningRegistry, tmp_path: Path, wasm_factory: Callable[..., bytes]
) -> None:
    """A second client downloads every blob; the fetcher rules applied to its copy give our bytes."""
    module = wasm_factory("skopeo-copy", payload_bytes=300_000)
    ref = Reference.parse(registry.repo("copy") + ":1.0.0")
    image = build_image(module, compat=False, version="1.0.0")
    with RegistryClient(ref) as client:
        push_image(client, ref, image)
    layout = tmp_path / "layout"
    copied = _skopeo("copy", "--src-tls-verify=false", f"docker://{ref}", f"oci:{layout}:copy")
    assert copied.returncode == 0, copied.stderr
    index = json.loads((layout / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"]
    assert manifest_digest == image.digest  # skopeo kept the manifest byte for byte

    def read_blob(descriptor: dict[str, object]) -> bytes:
        algo, hex_digest = str(descriptor["digest"]).split(":")
        return (layout / "blobs" / algo / hex_digest).read_bytes()

    manifest = json.loads(read_blob({"digest": manifest_digest}))
    assert extract_module(manifest, read_blob).module_bytes == module


def test_tag_conflict_and_pinned_reference(registry: RunningRegistry, wasm_factory: Callable[..., bytes]) -> None:
    ref = Reference.parse(registry.repo("client") + ":1")
    first = build_image(wasm_factory("client-1"), compat=False, version="1")
    second = build_image(wasm_factory("client-2"), compat=False, version="1")
    with RegistryClient(ref) as client:
        assert push_image(client, ref, first).status == "pushed"
        assert push_image(client, ref, first).status == "unchanged"
        with pytest.raises(TagConflictError):
            push_image(client, ref, second)
        # A reference that pins a digest must match the image being pushed.
        with pytest.raises(TagConflictError, match="pins"):
            push_image(client, ref.with_digest(first.digest), second)
        pinned = ref.with_digest(first.digest)
        manifest = fetch_manifest(client, Reference(ref.registry, ref.repository, None, first.digest))
        assert manifest.raw == first.manifest_bytes
        assert pinned.pinned_url(first.digest).endswith(first.digest)


def test_tls_to_a_plain_http_registry_is_a_clear_error(registry: RunningRegistry) -> None:
    ref = Reference.parse(registry.repo("tls") + ":1")
    with RegistryClient(ref, plain_http=False, timeout_s=5) as client, pytest.raises(
        RegistryUnreachableError, match="--plain-http"
    ):
        client.ping()


def test_verified_tls_to_a_self_signed_registry_is_a_clear_error(tls_registry: RunningRegistry) -> None:
    ref = Reference.parse(tls_registry.repo("verify-tls") + ":1")
    with RegistryClient(ref, plain_http=False, timeout_s=5) as client, pytest.raises(
        RegistryUnreachableError, match="TLS to .* failed .*--insecure"
    ):
        client.ping()
    with RegistryClient(ref, plain_http=False, verify_tls=False, timeout_s=5) as client:
        client.ping()
