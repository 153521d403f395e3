"""How Higress's Wasm fetcher finds the module in an image: the same rules, in the same order.

Higress pulls `oci://` plugins with Istio's image fetcher (`pkg/wasm/imagefetcher.go` in its Istio
fork). Re-stated here, not copied, so `tokenusage verify-image` and the tests judge an image the
way the gateway will:

1. Docker schema2 manifest (`mediaType` field is the Docker one): the LAST layer must be
   `application/vnd.docker.image.rootfs.diff.tar.gzip`; no other rule is tried.
2. Otherwise, the LAST layer is `application/vnd.oci.image.layer.v1.tar+gzip`: gunzip, read the tar
   stream (at most 256 MiB of it), and take the FIRST entry whose base name is `plugin.wasm`.
3. If 2 fails for any reason: EXACTLY two layers, and the first one of media type
   `application/vnd.module.wasm.content.layer.v1+wasm` is the raw module.
Then the gateway refuses bytes that do not start with the Wasm magic (at least 8 bytes).

No I/O: blobs arrive through the `read_blob` callable the caller passes in.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wasm_oci.manifest import (
    MEDIA_TYPE_DOCKER_LAYER_TAR_GZIP,
    MEDIA_TYPE_DOCKER_MANIFEST,
    MEDIA_TYPE_OCI_LAYER_TAR_GZIP,
    MEDIA_TYPE_WASM_CONTENT,
    PLUGIN_FILE_NAME,
)

__all__ = [
    "TAR_STREAM_LIMIT_BYTES",
    "RULE_DOCKER_TAR_GZ",
    "RULE_OCI_TAR_GZ",
    "RULE_OCI_RAW_WASM",
    "ImageFormatError",
    "Extracted",
    "ReadBlobFn",
    "extract_module",
    "module_from_tar_gz",
    "is_valid_wasm",
]

# Istio wraps the gunzipped stream in io.LimitReader(.., 256 MiB): everything up to and including
# plugin.wasm (earlier entries, headers, padding) must fit.
TAR_STREAM_LIMIT_BYTES = 256 * 1024 * 1024
RULE_DOCKER_TAR_GZ = "docker: last layer tar.gz with plugin.wasm"
RULE_OCI_TAR_GZ = "oci: last layer tar+gzip with plugin.wasm"
RULE_OCI_RAW_WASM = "oci: two layers, one raw wasm"
_WASM_MAGIC = b"\x00asm"

# Given a layer descriptor (mediaType, digest, size), return the blob's bytes (digest-checked).
ReadBlobFn = Callable[[dict[str, Any]], bytes]


class ImageFormatError(ValueError):
    """The image matches none of the fetcher's rules; the message says why for each rule tried."""


@dataclass(frozen=True)
class Extracted:
    rule: str
    module_bytes: bytes = field(repr=False)
    layer_digest: str


def is_valid_wasm(module_bytes: bytes) -> bool:
    """The gateway's own check: 8-byte header, Wasm magic."""
    return len(module_bytes) >= 8 and module_bytes[:4] == _WASM_MAGIC


def _go_base(name: str) -> str:
    # Go's filepath.Base: trailing slashes dropped, then the last element ("." for empty).
    stripped = name.rstrip("/")
    if not stripped:
        return "/" if name else "."
    return stripped.rsplit("/", 1)[-1]


class _LimitedReader(io.RawIOBase):
    """Reads at most `limit` bytes from `inner`, then reports end of stream (like io.LimitReader)."""

    def __init__(self, inner: io.BufferedIOBase | gzip.GzipFile, limit: int) -> None:
        self._inner = inner
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._left <= 0:
            return 0
        view = memoryview(buffer)[: min(len(buffer), self._left)]
        data = self._inner.read(len(view))
        view[: len(data)] = data
        self._left -= len(data)
        return len(data)


def module_from_tar_gz(blob: bytes, *, limit_bytes: int = TAR_STREAM_LIMIT_BYTES) -> bytes:
    """The first `plugin.wasm` entry (by base name, any entry type) of a tar.gz, as the fetcher reads it."""
    try:
        stream = _LimitedReader(gzip.GzipFile(fileobj=io.BytesIO(blob), mode="rb"), limit_bytes)
        with tarfile.open(fileobj=io.BufferedReader(stream), mode="r|") as tar:
            for member in tar:
                if _go_base(member.name) != PLUGIN_FILE_NAME:
                    continue
                if not member.isfile():
                    return b""  # Go reads h.Size (0 for a directory) bytes: an empty module.
                reader = tar.extractfile(member)
                assert reader is not None  # a regular file always has a reader
                data = reader.read()
                if len(data) != member.size:
                    raise ImageFormatError(f"{PLUGIN_FILE_NAME} is truncated (or past the 256 MiB limit)")
                return data
    except (OSError, EOFError, tarfile.TarError, zlib.error) as exc:
        raise ImageFormatError(f"layer is not a readable tar.gz: {exc}") from exc
    raise ImageFormatError(f"{PLUGIN_FILE_NAME} not found in the archive")


def _last_layer_tar_gz(layers: list[dict[str, Any]], media_type: str, read_blob: ReadBlobFn) -> Extracted:
    if not layers:
        raise ImageFormatError("number of layers must be greater than zero")
    last = layers[-1]
    if last.get("mediaType") != media_type:
        raise ImageFormatError(f"last layer has media type {last.get('mediaType')!r}, expected {media_type}")
    module = module_from_tar_gz(read_blob(last))
    rule = RULE_DOCKER_TAR_GZ if media_type == MEDIA_TYPE_DOCKER_LAYER_TAR_GZIP else RULE_OCI_TAR_GZ
    return Extracted(rule=rule, module_bytes=module, layer_digest=str(last.get("digest")))


def _two_layers_raw_wasm(layers: list[dict[str, Any]], read_blob: ReadBlobFn) -> Extracted:
    if len(layers) != 2:
        raise ImageFormatError(f"number of layers must be 2 but got {len(layers)}")
    for layer in layers:
        if layer.get("mediaType") == MEDIA_TYPE_WASM_CONTENT:
            return Extracted(RULE_OCI_RAW_WASM, read_blob(layer), str(layer.get("digest")))
    raise ImageFormatError(f"no layer of type {MEDIA_TYPE_WASM_CONTENT}")


def extract_module(manifest: dict[str, Any], read_blob: ReadBlobFn) -> Extracted:
    """Apply the fetcher's rules to an image manifest (not an index); raise ImageFormatError if none fits."""
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise ImageFormatError("manifest has no layers list (is it an image manifest?)")
    if manifest.get("mediaType") == MEDIA_TYPE_DOCKER_MANIFEST:
        try:
            return _last_layer_tar_gz(layers, MEDIA_TYPE_DOCKER_LAYER_TAR_GZIP, read_blob)
        except ImageFormatError as exc:
            raise ImageFormatError(f"Docker image: {exc}") from exc
    try:
        return _last_layer_tar_gz(layers, MEDIA_TYPE_OCI_LAYER_TAR_GZIP, read_blob)
    except ImageFormatError as compat_exc:
        try:
            return _two_layers_raw_wasm(layers, read_blob)
        except ImageFormatError as oci_exc:
            raise ImageFormatError(
                f"not a Higress-loadable image: as tar+gzip image: {compat_exc}; as two-layer wasm artifact: {oci_exc}"
            ) from oci_exc
