"""wasm_oci.reference: parsing image references and the pinned URL."""

from __future__ import annotations

import pytest

from wasm_oci.reference import Reference, ReferenceError

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:5000/plugins/tu:1.0.0", Reference("127.0.0.1:5000", "plugins/tu", "1.0.0")),
        ("oci://ghcr.io/gpustack/tu:v1", Reference("ghcr.io", "gpustack/tu", "v1")),
        (f"localhost/tu@{DIGEST}", Reference("localhost", "tu", None, DIGEST)),
        (f"reg.example/a/b:t@{DIGEST}", Reference("reg.example", "a/b", "t", DIGEST)),
        ("gpustack/tu:1", Reference("docker.io", "gpustack/tu", "1")),
        ("tu:1", Reference("docker.io", "library/tu", "1")),
    ],
)
def test_parse(text: str, expected: Reference) -> None:
    assert Reference.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    ["127.0.0.1:5000/plugins/tu", "https://x.io/a:1", "x.io/UPPER:1", "x.io/a@sha256:abc", "x.io/a:bad tag"],
)
def test_reject(text: str) -> None:
    with pytest.raises(ReferenceError):
        Reference.parse(text)


def test_pinned_url_and_hosts() -> None:
    ref = Reference.parse("127.0.0.1:5000/plugins/tu:1.0.0")
    assert ref.pinned_url(DIGEST) == f"oci://127.0.0.1:5000/plugins/tu@{DIGEST}"
    assert ref.host_without_port == "127.0.0.1"
    assert Reference.parse("gpustack/tu:1").api_host == "registry-1.docker.io"
    assert Reference.parse(f"oci://h.io/a@{DIGEST}").manifest_reference == DIGEST
