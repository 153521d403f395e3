"""The plugin's OCI image, built in memory: blobs, digests, the config blob and the manifest.

No I/O here (no files, no network): bytes in, an `Image` out. `registry.py` sends it.

Two layouts, both accepted by Higress's Wasm fetcher (`extract.py` says exactly how it reads them):
- `higress_image`: Higress's own plugin image. One file per layer, `plugin.wasm` tar-gzipped as the
  LAST layer (`application/vnd.oci.image.layer.v1.tar+gzip`), which is what the fetcher unpacks;
  `spec.yaml` and `README.md` ride along for Higress's console.
- `compat_image`: the "oci variant" of the solo.io Wasm image spec, EXACTLY two layers: a runtime
  config and the raw module (`application/vnd.module.wasm.content.layer.v1+wasm`).

Everything is deterministic: the same module (and metadata) gives the same manifest digest, so a
re-push of an unchanged module is a no-op and the digest can be pinned in a policy.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from typing import Any

import yaml

__all__ = [
    "MEDIA_TYPE_OCI_MANIFEST",
    "MEDIA_TYPE_OCI_INDEX",
    "MEDIA_TYPE_OCI_CONFIG",
    "MEDIA_TYPE_OCI_LAYER_TAR_GZIP",
    "MEDIA_TYPE_DOCKER_MANIFEST",
    "MEDIA_TYPE_DOCKER_MANIFEST_LIST",
    "MEDIA_TYPE_DOCKER_LAYER_TAR_GZIP",
    "MEDIA_TYPE_WASM_SPEC",
    "MEDIA_TYPE_WASM_DOC",
    "MEDIA_TYPE_WASM_ICON",
    "MEDIA_TYPE_WASM_CONTENT",
    "MEDIA_TYPE_WASM_RUNTIME_CONFIG",
    "MANIFEST_MEDIA_TYPES",
    "PLUGIN_FILE_NAME",
    "Blob",
    "Image",
    "sha256_digest",
    "plugin_tar_gz",
    "plugin_spec_yaml",
    "higress_image",
    "compat_image",
]

MEDIA_TYPE_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_TYPE_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_TYPE_OCI_LAYER_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_TYPE_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_TYPE_DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_TYPE_DOCKER_LAYER_TAR_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MEDIA_TYPE_WASM_SPEC = "application/vnd.module.wasm.spec.v1+yaml"
MEDIA_TYPE_WASM_DOC = "application/vnd.module.wasm.doc.v1+markdown"
MEDIA_TYPE_WASM_ICON = "application/vnd.module.wasm.icon.v1+png"
MEDIA_TYPE_WASM_CONTENT = "application/vnd.module.wasm.content.layer.v1+wasm"
MEDIA_TYPE_WASM_RUNTIME_CONFIG = "application/vnd.module.wasm.config.v1+json"

# What a registry may answer for a manifest request, in the order we ask for them (Accept header).
MANIFEST_MEDIA_TYPES: tuple[str, ...] = (
    MEDIA_TYPE_OCI_MANIFEST,
    MEDIA_TYPE_DOCKER_MANIFEST,
    MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_DOCKER_MANIFEST_LIST,
)

PLUGIN_FILE_NAME = "plugin.wasm"  # the name Higress's fetcher looks for inside the tar layer
_TITLE = "org.opencontainers.image.title"  # oras names pulled files after this annotation
# Fixed tar metadata: the same module must give the same layer digest on every machine.
_TAR_MTIME = 0
_TAR_MODE = 0o644


def sha256_digest(data: bytes) -> str:
    """`sha256:<hex>`, the OCI digest of `data`."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Blob:
    """One content-addressed blob (config or layer) and how the manifest describes it."""

    media_type: str
    data: bytes = field(repr=False)
    annotations: tuple[tuple[str, str], ...] = ()

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    @property
    def size_bytes(self) -> int:
        return len(self.data)

    def descriptor(self) -> dict[str, Any]:
        desc: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size_bytes}
        if self.annotations:
            desc["annotations"] = dict(self.annotations)
        return desc


@dataclass(frozen=True)
class Image:
    """A complete image: config, layers (in order) and the manifest bytes that name them."""

    config: Blob
    layers: tuple[Blob, ...]
    manifest_bytes: bytes = field(repr=False)
    media_type: str = MEDIA_TYPE_OCI_MANIFEST

    @property
    def digest(self) -> str:
        """The manifest digest: what `@sha256:` in a URL and WasmPlugin `sha256` (for oci://) pin."""
        return sha256_digest(self.manifest_bytes)

    def blobs(self) -> tuple[Blob, ...]:
        return (self.config, *self.layers)


def plugin_tar_gz(module_bytes: bytes) -> bytes:
    """`plugin.wasm` alone in a tar.gz, byte-for-byte reproducible.

    Fixed mtime/uid/gid/owner names/mode, ustar format (no PAX timestamps), gzip header mtime 0
    and no file name. The same module gives the same digest with the same zlib.
    """
    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo(PLUGIN_FILE_NAME)
        info.size = len(module_bytes)
        info.mtime = _TAR_MTIME
        info.mode = _TAR_MODE
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        tar.addfile(info, io.BytesIO(module_bytes))
    gz_buf = io.BytesIO()
    # filename="" keeps the (absent) name out of the header; mtime=0 keeps the clock out. Level 6:
    # level 9 takes 4.5x as long on the 17.5 MB module for 1% fewer bytes.
    with gzip.GzipFile(filename="", fileobj=gz_buf, mode="wb", compresslevel=6, mtime=0) as gz:
        gz.write(tar_buf.getvalue())
    return gz_buf.getvalue()


def plugin_spec_yaml(
    *,
    name: str,
    version: str,
    title: str,
    description: str,
    phase: str = "UNSPECIFIED_PHASE",
    priority: int = 910,
    config_properties: dict[str, Any] | None = None,
) -> bytes:
    """Higress's plugin `spec.yaml`: identity, default placement and the config schema."""
    spec: dict[str, Any] = {
        "apiVersion": "1.0.0",
        "info": {
            "category": "custom",
            "name": name,
            "title": title,
            "description": description,
            "version": version,
        },
        "spec": {
            "phase": phase,
            "priority": priority,
            "configSchema": {
                "openAPIV3Schema": {"type": "object", "properties": config_properties or {}},
            },
        },
    }
    text: str = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)
    return text.encode()


def _image(config: Blob, layers: tuple[Blob, ...], annotations: dict[str, str]) -> Image:
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [layer.descriptor() for layer in layers],
    }
    if annotations:
        manifest["annotations"] = dict(sorted(annotations.items()))
    # Compact, key order as built: the bytes are what the digest covers.
    manifest_bytes = json.dumps(manifest, separators=(",", ":")).encode()
    return Image(config=config, layers=layers, manifest_bytes=manifest_bytes)


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def higress_image(
    module_bytes: bytes,
    *,
    spec_yaml: bytes,
    readme_md: bytes,
    icon_png: bytes | None = None,
    annotations: dict[str, str] | None = None,
) -> Image:
    """Higress's plugin image: spec.yaml, README.md, [icon.png], plugin.wasm tar.gz LAST."""
    tar_gz = plugin_tar_gz(module_bytes)
    layers: list[Blob] = [
        Blob(MEDIA_TYPE_WASM_SPEC, spec_yaml, ((_TITLE, "spec.yaml"),)),
        Blob(MEDIA_TYPE_WASM_DOC, readme_md, ((_TITLE, "README.md"),)),
    ]
    if icon_png is not None:
        layers.append(Blob(MEDIA_TYPE_WASM_ICON, icon_png, ((_TITLE, "icon.png"),)))
    layers.append(Blob(MEDIA_TYPE_OCI_LAYER_TAR_GZIP, tar_gz, ((_TITLE, "plugin.tar.gz"),)))
    # A valid OCI image config (not an empty artifact config), so generic tools (skopeo copy,
    # crane) handle the image too. diff_ids: the uncompressed digest of each layer.
    diff_ids = [sha256_digest(gzip.decompress(b.data)) if b is layers[-1] else b.digest for b in layers]
    config = Blob(
        MEDIA_TYPE_OCI_CONFIG,
        _json_bytes(
            {
                "architecture": "wasm",
                "os": "wasip1",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
            }
        ),
    )
    return _image(config, tuple(layers), annotations or {})


def compat_image(module_bytes: bytes, *, annotations: dict[str, str] | None = None) -> Image:
    """The two-layer "oci variant": runtime config + raw module (never a single raw layer)."""
    runtime_config = _json_bytes({"type": "envoy_proxy", "abiVersions": ["v0.2.1"], "config": {}})
    layers = (
        Blob(MEDIA_TYPE_WASM_RUNTIME_CONFIG, runtime_config, ((_TITLE, "runtime-config.json"),)),
        Blob(MEDIA_TYPE_WASM_CONTENT, module_bytes, ((_TITLE, PLUGIN_FILE_NAME),)),
    )
    config = Blob(MEDIA_TYPE_WASM_RUNTIME_CONFIG, runtime_config)
    return _image(config, layers, annotations or {})
