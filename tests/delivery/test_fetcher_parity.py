"""Our reading of an image (wasm_oci.extract) agrees with go-containerregistry's, Higress's library.

tests/delivery/ggcr_fetch reads each pushed image through go-containerregistry (manifest
resolution, layer media types, digest-verified blobs) with the fetcher's rules; both readers
must accept the same images, refuse the same ones, and return the same module bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from wasm_oci.cli import build_image
from wasm_oci.credentials import Credentials
from wasm_oci.extract import ImageFormatError, extract_module
from wasm_oci.manifest import (
    MEDIA_TYPE_DOCKER_LAYER_TAR_GZIP,
    MEDIA_TYPE_DOCKER_MANIFEST,
    MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_LAYER_TAR_GZIP,
    MEDIA_TYPE_WASM_CONTENT,
    Blob,
    Image,
    plugin_tar_gz,
)
from wasm_oci.reference import Reference
from wasm_oci.registry import RegistryClient, fetch_manifest, push_image

from .conftest import RunningRegistry

pytestmark = pytest.mark.registry


def _ggcr(binary: Path, ref: str, docker_config: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(docker_config or "/nonexistent")}
    if docker_config is not None:
        env["DOCKER_CONFIG"] = str(docker_config)
    return subprocess.run([str(binary), ref], capture_output=True, text=True, env=env, timeout=120)


def _push(reg: RunningRegistry, name: str, image: Image) -> Reference:
    ref = Reference.parse(reg.repo(name) + ":1")
    creds = Credentials(reg.username, reg.password) if reg.username and reg.password else None
    with RegistryClient(ref, credentials=creds) as client:
        push_image(client, ref, image)
    return ref


def _ours(reg: RunningRegistry, ref: Reference) -> bytes:
    creds = Credentials(reg.username, reg.password) if reg.username and reg.password else None
    with RegistryClient(ref, credentials=creds) as client:
        manifest = fetch_manifest(client, ref)
        return extract_module(manifest.json(), client.get_blob).module_bytes


def _image(layers: list[Blob], media_type: str, config_media_type: str) -> Image:
    config = Blob(config_media_type, b'{"architecture":"wasm","os":"wasip1","rootfs":{"type":"layers","diff_ids":[]}}')
    manifest = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config.descriptor(),
        "layers": [layer.descriptor() for layer in layers],
    }
    return Image(config, tuple(layers), json.dumps(manifest).encode(), media_type)


@pytest.mark.parametrize("compat", [False, True], ids=["higress", "compat"])
def test_ggcr_reads_what_we_push(
    registry: RunningRegistry, ggcr_fetch: Path, wasm_factory: Callable[..., bytes], compat: bool
) -> None:
    module = wasm_factory(f"parity-{compat}", payload_bytes=200_000)
    image = build_image(module, compat=compat, version="1")
    ref = _push(registry, "parity", image)
    result = _ggcr(ggcr_fetch, str(ref))
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["digest"] == image.digest
    assert seen["module_sha256"] == hashlib.sha256(module).hexdigest()
    assert seen["rule"] == ("oci-raw-wasm" if compat else "oci-tar-gzip")
    assert _ours(registry, ref) == module


def test_ggcr_reads_it_with_docker_config_credentials(
    auth_registry: RunningRegistry, ggcr_fetch: Path, wasm_factory: Callable[..., bytes], tmp_path: Path
) -> None:
    module = wasm_factory("parity-auth")
    ref = _push(auth_registry, "parity-auth", build_image(module, compat=False, version="1"))
    assert _ggcr(ggcr_fetch, str(ref)).returncode != 0  # the registry really needs the login
    token = base64.b64encode(f"{auth_registry.username}:{auth_registry.password}".encode()).decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {auth_registry.host: {"auth": token}}}))
    result = _ggcr(ggcr_fetch, str(ref), docker_config=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["module_sha256"] == hashlib.sha256(module).hexdigest()


def _cases(module: bytes) -> dict[str, tuple[Image, bool]]:
    tar_gz = plugin_tar_gz(module)
    oci_config = "application/vnd.oci.image.config.v1+json"
    docker_config = "application/vnd.docker.container.image.v1+json"
    readme = Blob("text/markdown", b"# readme\n")
    return {
        "docker-manifest-docker-layer": (
            _image([Blob(MEDIA_TYPE_DOCKER_LAYER_TAR_GZIP, tar_gz)], MEDIA_TYPE_DOCKER_MANIFEST, docker_config), True),
        "docker-manifest-oci-layer": (
            _image([Blob(MEDIA_TYPE_OCI_LAYER_TAR_GZIP, tar_gz)], MEDIA_TYPE_DOCKER_MANIFEST, docker_config), False),
        "single-raw-wasm-layer": (
            _image([Blob(MEDIA_TYPE_WASM_CONTENT, module)], "application/vnd.oci.image.manifest.v1+json", oci_config), False),
        "tar-gz-not-last": (
            _image([Blob(MEDIA_TYPE_OCI_LAYER_TAR_GZIP, tar_gz), readme], "application/vnd.oci.image.manifest.v1+json", oci_config), False),
        "raw-wasm-first-of-two": (
            _image([Blob(MEDIA_TYPE_WASM_CONTENT, module), readme], "application/vnd.oci.image.manifest.v1+json", oci_config), True),
    }


@pytest.mark.parametrize("case", sorted(_cases(b"\0asm\1\0\0\0").keys()))
def test_both_readers_accept_and_refuse_the_same_images(
    registry: RunningRegistry, ggcr_fetch: Path, wasm_factory: Callable[..., bytes], case: str
) -> None:
    module = wasm_factory(f"case-{case}")
    image, loadable = _cases(module)[case]
    ref = _push(registry, case, image)
    go = _ggcr(ggcr_fetch, str(ref))
    assert (go.returncode == 0) is loadable, go.stdout + go.stderr
    if loadable:
        assert json.loads(go.stdout)["module_sha256"] == hashlib.sha256(module).hexdigest()
        assert _ours(registry, ref) == module
    else:
        with pytest.raises(ImageFormatError):
            _ours(registry, ref)


def test_an_image_index_resolves_to_linux_amd64_in_both_readers(
    registry: RunningRegistry, ggcr_fetch: Path, wasm_factory: Callable[..., bytes]
) -> None:
    amd64, arm64 = wasm_factory("index-amd64"), wasm_factory("index-arm64")
    images = {arch: build_image(module, compat=False, version="1") for arch, module in (("amd64", amd64), ("arm64", arm64))}
    # Both images pushed by digest, then an index naming them, in one repository.
    ref = Reference.parse(registry.repo("index") + ":multi")
    index = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_INDEX,
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": images[arch].digest,
             "size": len(images[arch].manifest_bytes), "platform": {"os": "linux", "architecture": arch}}
            for arch in ("arm64", "amd64")
        ],
    }
    with RegistryClient(ref) as client:
        for image in images.values():
            push_image(client, Reference(ref.registry, ref.repository, None, image.digest), image)
        index_bytes = json.dumps(index).encode()
        empty = Blob("application/vnd.oci.empty.v1+json", b"{}")
        client.put_manifest("multi", Image(empty, (), index_bytes, MEDIA_TYPE_OCI_INDEX))
    go = _ggcr(ggcr_fetch, str(ref))
    assert go.returncode == 0, go.stderr
    assert json.loads(go.stdout)["module_sha256"] == hashlib.sha256(amd64).hexdigest()
    assert _ours(registry, ref) == amd64
