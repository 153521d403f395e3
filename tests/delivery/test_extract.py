"""wasm_oci.extract: Higress's fetcher rules, on images built in memory (no registry)."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Callable
from typing import Any

import pytest

from wasm_oci.extract import (
    RULE_DOCKER_TAR_GZ,
    RULE_OCI_RAW_WASM,
    RULE_OCI_TAR_GZ,
    ImageFormatError,
    extract_module,
    is_valid_wasm,
    module_from_tar_gz,
)
from wasm_oci.manifest import (
    MEDIA_TYPE_DOCKER_LAYER_TAR_GZIP,
    MEDIA_TYPE_DOCKER_MANIFEST,
    MEDIA_TYPE_OCI_LAYER_TAR_GZIP,
    MEDIA_TYPE_WASM_CONTENT,
    Blob,
    Image,
    compat_image,
    higress_image,
    plugin_tar_gz,
)


def _reader(*blobs: Blob) -> Callable[[dict[str, Any]], bytes]:
    by_digest = {b.digest: b.data for b in blobs}
    return lambda descriptor: by_digest[descriptor["digest"]]


def _extract(image: Image) -> Any:
    return extract_module(json.loads(image.manifest_bytes), _reader(*image.blobs()))


def _tar_gz(entries: list[tuple[str, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue())


def _manifest(layers: list[Blob], media_type: str | None = None) -> dict[str, Any]:
    manifest: dict[str, Any] = {"schemaVersion": 2, "layers": [b.descriptor() for b in layers]}
    if media_type:
        manifest["mediaType"] = media_type
    return manifest


def test_higress_image_is_read_from_the_last_layer(wasm_factory: Callable[..., bytes]) -> None:
    module = wasm_factory("higress")
    result = _extract(higress_image(module, spec_yaml=b"a: 1\n", readme_md=b"# r\n"))
    assert result.rule == RULE_OCI_TAR_GZ
    assert result.module_bytes == module


def test_compat_image_is_read_from_the_raw_wasm_layer(wasm_factory: Callable[..., bytes]) -> None:
    module = wasm_factory("compat")
    result = _extract(compat_image(module))
    assert result.rule == RULE_OCI_RAW_WASM
    assert result.module_bytes == module


def test_single_raw_wasm_layer_is_rejected(wasm_factory: Callable[..., bytes]) -> None:
    layer = Blob(MEDIA_TYPE_WASM_CONTENT, wasm_factory("single"))
    with pytest.raises(ImageFormatError, match="number of layers must be 2 but got 1"):
        extract_module(_manifest([layer]), _reader(layer))


def test_three_layers_with_raw_wasm_are_rejected(wasm_factory: Callable[..., bytes]) -> None:
    layers = [Blob("text/plain", b"x"), Blob("text/plain", b"y"), Blob(MEDIA_TYPE_WASM_CONTENT, wasm_factory("3"))]
    with pytest.raises(ImageFormatError):
        extract_module(_manifest(layers), _reader(*layers))


def test_tar_gz_layer_not_last_is_rejected(wasm_factory: Callable[..., bytes]) -> None:
    layers = [Blob(MEDIA_TYPE_OCI_LAYER_TAR_GZIP, plugin_tar_gz(wasm_factory("x"))), Blob("text/plain", b"readme")]
    with pytest.raises(ImageFormatError, match="last layer"):
        extract_module(_manifest(layers), _reader(*layers))


def test_docker_manifest_needs_a_docker_layer(wasm_factory: Callable[..., bytes]) -> None:
    module = wasm_factory("docker")
    docker_layer = Blob(MEDIA_TYPE_DOCKER_LAYER_TAR_GZIP, plugin_tar_gz(module))
    ok = extract_module(_manifest([docker_layer], MEDIA_TYPE_DOCKER_MANIFEST), _reader(docker_layer))
    assert (ok.rule, ok.module_bytes) == (RULE_DOCKER_TAR_GZ, module)
    # A Docker manifest never falls through to the OCI rules.
    oci_layer = Blob(MEDIA_TYPE_OCI_LAYER_TAR_GZIP, plugin_tar_gz(module))
    with pytest.raises(ImageFormatError, match="Docker image"):
        extract_module(_manifest([oci_layer], MEDIA_TYPE_DOCKER_MANIFEST), _reader(oci_layer))


def test_first_entry_named_plugin_wasm_wins_at_any_depth() -> None:
    blob = _tar_gz([("README.md", b"doc"), ("dist/plugin.wasm", b"\0asm\1\0\0\0first"), ("plugin.wasm", b"second")])
    assert module_from_tar_gz(blob) == b"\0asm\1\0\0\0first"


def test_directory_named_plugin_wasm_gives_an_empty_module() -> None:
    # Go reads h.Size bytes of the first matching entry; a directory has size 0.
    blob = _tar_gz([("plugin.wasm/", None), ("x/plugin.wasm", b"\0asm\1\0\0\0")])
    module = module_from_tar_gz(blob)
    assert module == b""
    assert not is_valid_wasm(module)


def test_missing_plugin_wasm_and_garbage_are_errors() -> None:
    with pytest.raises(ImageFormatError, match="not found"):
        module_from_tar_gz(_tar_gz([("filter.wasm", b"\0asm\1\0\0\0")]))
    with pytest.raises(ImageFormatError, match="not a readable tar.gz"):
        module_from_tar_gz(b"\0asm raw, not gzip")


def test_stream_limit_counts_everything_up_to_the_module() -> None:
    module = b"\0asm\1\0\0\0" + b"m" * 4000
    blob = _tar_gz([("pad.bin", b"p" * 8000), ("plugin.wasm", module)])
    assert module_from_tar_gz(blob, limit_bytes=20_000) == module
    # 8000 bytes of padding + headers + 4008 module bytes do not fit in 10000.
    with pytest.raises(ImageFormatError):
        module_from_tar_gz(blob, limit_bytes=10_000)


def test_wasm_magic_check() -> None:
    assert is_valid_wasm(b"\0asm\1\0\0\0")
    assert not is_valid_wasm(b"\0asm")
    assert not is_valid_wasm(b"ELF\0\1\0\0\0")
