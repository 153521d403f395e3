"""wasm_oci.manifest: layouts, media types, determinism. Pure: no registry."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Callable

import yaml

from usage_filter.core.config import FIELDS
from wasm_oci.cli import build_image
from wasm_oci.manifest import (
    MEDIA_TYPE_OCI_CONFIG,
    MEDIA_TYPE_OCI_LAYER_TAR_GZIP,
    MEDIA_TYPE_OCI_MANIFEST,
    MEDIA_TYPE_WASM_CONTENT,
    MEDIA_TYPE_WASM_DOC,
    MEDIA_TYPE_WASM_ICON,
    MEDIA_TYPE_WASM_SPEC,
    compat_image,
    higress_image,
    plugin_tar_gz,
    sha256_digest,
)


def test_tar_gz_is_reproducible_and_holds_only_plugin_wasm(wasm_factory: Callable[..., bytes]) -> None:
    module = wasm_factory("a")
    first, second = plugin_tar_gz(module), plugin_tar_gz(bytes(module))
    assert first == second
    assert first[:2] == b"\x1f\x8b"
    assert first[4:8] == b"\x00\x00\x00\x00"  # gzip header mtime
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(first))) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["plugin.wasm"]
        member = members[0]
        assert (member.mtime, member.uid, member.gid, member.uname, member.gname) == (0, 0, 0, "", "")
        assert member.isfile() and member.mode == 0o644
        extracted = tar.extractfile(member)
        assert extracted is not None and extracted.read() == module


def test_different_modules_give_different_digests(wasm_factory: Callable[..., bytes]) -> None:
    a = build_image(wasm_factory("a"), compat=False, version="1.0.0")
    b = build_image(wasm_factory("b"), compat=False, version="1.0.0")
    assert a.digest != b.digest
    assert build_image(wasm_factory("a"), compat=False, version="1.0.0").digest == a.digest


def test_higress_layout_last_layer_is_tar_gz(wasm_factory: Callable[..., bytes]) -> None:
    module = wasm_factory("layout")
    image = higress_image(module, spec_yaml=b"apiVersion: 1.0.0\n", readme_md=b"# x\n", icon_png=b"\x89PNG")
    manifest = json.loads(image.manifest_bytes)
    assert manifest["schemaVersion"] == 2
    assert manifest["mediaType"] == MEDIA_TYPE_OCI_MANIFEST
    assert manifest["config"]["mediaType"] == MEDIA_TYPE_OCI_CONFIG
    assert [layer["mediaType"] for layer in manifest["layers"]] == [
        MEDIA_TYPE_WASM_SPEC,
        MEDIA_TYPE_WASM_DOC,
        MEDIA_TYPE_WASM_ICON,
        MEDIA_TYPE_OCI_LAYER_TAR_GZIP,
    ]
    last = image.layers[-1]
    assert manifest["layers"][-1] == {
        "mediaType": MEDIA_TYPE_OCI_LAYER_TAR_GZIP,
        "digest": sha256_digest(last.data),
        "size": len(last.data),
        "annotations": {"org.opencontainers.image.title": "plugin.tar.gz"},
    }
    assert last.data == plugin_tar_gz(module)
    config = json.loads(image.config.data)
    assert manifest["config"]["digest"] == sha256_digest(image.config.data)
    assert len(config["rootfs"]["diff_ids"]) == len(manifest["layers"])
    assert config["rootfs"]["diff_ids"][-1] == sha256_digest(gzip.decompress(last.data))


def test_compat_layout_has_exactly_two_layers_one_raw_wasm(wasm_factory: Callable[..., bytes]) -> None:
    module = wasm_factory("compat")
    image = compat_image(module)
    manifest = json.loads(image.manifest_bytes)
    assert len(manifest["layers"]) == 2
    wasm_layers = [layer for layer in manifest["layers"] if layer["mediaType"] == MEDIA_TYPE_WASM_CONTENT]
    assert len(wasm_layers) == 1
    assert wasm_layers[0]["digest"] == sha256_digest(module)
    assert image.layers[1].data == module


def test_spec_yaml_describes_every_config_key(wasm_factory: Callable[..., bytes]) -> None:
    image = build_image(wasm_factory("spec"), compat=False, version="1.2.3")
    spec_layer = next(layer for layer in image.layers if layer.media_type == MEDIA_TYPE_WASM_SPEC)
    spec = yaml.safe_load(spec_layer.data)
    assert spec["apiVersion"] == "1.0.0"
    assert spec["info"]["version"] == "1.2.3"
    assert spec["spec"]["priority"] == 910
    properties = spec["spec"]["configSchema"]["openAPIV3Schema"]["properties"]
    assert set(properties) == {f.key for f in FIELDS}
    for field in FIELDS:
        assert properties[field.key]["type"] == field.json_type
    readme = next(layer for layer in image.layers if layer.media_type == MEDIA_TYPE_WASM_DOC)
    assert readme.data.startswith(b"# gpustack-token-usage")
