"""`tokenusage push | pull | verify-image` against real registries (Debian docker-registry)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import CliResult, RunningRegistry

pytestmark = pytest.mark.registry

Cli = Callable[..., CliResult]


def _ok(result: CliResult) -> dict[str, str]:
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.fields()


def _one_line_error(result: CliResult, *needles: str) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("compat", [False, True], ids=["higress", "compat"])
def test_push_pull_round_trip(
    registry: RunningRegistry, cli: Cli, wasm_file: Path, tmp_path: Path, compat: bool
) -> None:
    ref = registry.repo("roundtrip") + ":1.0.0"
    pushed = _ok(cli("push", ref, "--plugin", str(wasm_file), *(["--compat"] if compat else [])))
    module_sha = hashlib.sha256(wasm_file.read_bytes()).hexdigest()
    assert pushed["status"] == "pushed"
    assert pushed["module_sha256"] == module_sha
    digest = pushed["digest"]
    repo = ref.rsplit(":", 1)[0]
    assert pushed["url"] == f"oci://{repo}@{digest}"
    # Higress compares WasmPlugin sha256 with the image (manifest) digest for oci:// URLs.
    assert pushed["wasmplugin_sha256"] == digest.removeprefix("sha256:")

    out = tmp_path / "pulled.wasm"
    pulled = _ok(cli("pull", ref, "-o", str(out)))
    assert out.read_bytes() == wasm_file.read_bytes()
    assert pulled["digest"] == digest
    assert pulled["rule"] == ("oci: two layers, one raw wasm" if compat else "oci: last layer tar+gzip with plugin.wasm")

    verified = _ok(cli("verify-image", ref, "--plugin", str(wasm_file)))
    assert verified["verdict"] == "ok"


def test_pinned_url_pulls_the_same_bytes(registry: RunningRegistry, cli: Cli, wasm_file: Path, tmp_path: Path) -> None:
    ref = registry.repo("pin") + ":v1"
    url = _ok(cli("push", ref, "--plugin", str(wasm_file)))["url"]
    out = tmp_path / "by-digest.wasm"
    _ok(cli("pull", url, "-o", str(out)))
    assert out.read_bytes() == wasm_file.read_bytes()
    # A digest the registry does not have is a clear "not found".
    missing = url.rsplit("@", 1)[0] + "@sha256:" + "0" * 64
    _one_line_error(cli("pull", missing, "-o", str(out)), "no manifest")


def test_repush_same_module_is_unchanged_and_same_digest(
    registry: RunningRegistry, cli: Cli, wasm_file: Path
) -> None:
    ref = registry.repo("repush") + ":1.0.0"
    first = _ok(cli("push", ref, "--plugin", str(wasm_file)))
    again = _ok(cli("push", ref, "--plugin", str(wasm_file)))
    assert again["status"] == "unchanged"
    assert again["digest"] == first["digest"]
    assert again["blobs_uploaded"] == "0"


def test_repush_other_module_refused_unless_force(
    registry: RunningRegistry, cli: Cli, wasm_file: Path, tmp_path: Path, wasm_factory: Callable[..., bytes]
) -> None:
    ref = registry.repo("conflict") + ":1.0.0"
    first = _ok(cli("push", ref, "--plugin", str(wasm_file)))
    other = tmp_path / "other.wasm"
    other.write_bytes(wasm_factory("other-module"))
    _one_line_error(cli("push", ref, "--plugin", str(other)), "already names", first["digest"], "--force")
    # The tag still names the first module.
    out = tmp_path / "still.wasm"
    _ok(cli("pull", ref, "-o", str(out)))
    assert out.read_bytes() == wasm_file.read_bytes()

    forced = _ok(cli("push", ref, "--plugin", str(other), "--force"))
    assert forced["status"] == "overwritten"
    _ok(cli("pull", ref, "-o", str(out)))
    assert out.read_bytes() == other.read_bytes()
    # The old image is still reachable by its digest: pinned policies keep working.
    _ok(cli("pull", first["url"], "-o", str(out)))
    assert out.read_bytes() == wasm_file.read_bytes()


def test_basic_auth_with_flags_env_and_docker_config(
    auth_registry: RunningRegistry, cli: Cli, wasm_file: Path, tmp_path: Path
) -> None:
    ref = auth_registry.repo("auth") + ":1"
    _ok(cli("push", ref, "--plugin", str(wasm_file), *auth_registry.auth_args()))

    env = {"TOKENUSAGE_REGISTRY_USERNAME": str(auth_registry.username), "TOKENUSAGE_REGISTRY_PASSWORD": str(auth_registry.password)}
    _ok(cli("verify-image", ref, "--plugin", str(wasm_file), env=env))

    docker_dir = tmp_path / "docker"
    docker_dir.mkdir()
    token = base64.b64encode(f"{auth_registry.username}:{auth_registry.password}".encode()).decode()
    (docker_dir / "config.json").write_text(json.dumps({"auths": {auth_registry.host: {"auth": token}}}))
    out = tmp_path / "out.wasm"
    _ok(cli("pull", ref, "-o", str(out), env={"DOCKER_CONFIG": str(docker_dir)}))
    assert out.read_bytes() == wasm_file.read_bytes()


def test_wrong_password_and_no_credentials(auth_registry: RunningRegistry, cli: Cli, wasm_file: Path) -> None:
    ref = auth_registry.repo("denied") + ":1"
    line = _one_line_error(
        cli("push", ref, "--plugin", str(wasm_file), "--username", str(auth_registry.username), "--password", "wrong"),
        "authentication failed",
        auth_registry.host,
    )
    assert "wrong" not in line  # the password is never echoed
    _one_line_error(cli("push", ref, "--plugin", str(wasm_file)), "requires a login")


def test_unreachable_registry_and_unknown_host(cli: Cli, wasm_file: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _one_line_error(cli("push", f"127.0.0.1:{port}/a/b:1", "--plugin", str(wasm_file), "--timeout", "5"), "cannot reach registry")
    _one_line_error(
        cli("push", "no-such-host.invalid/a/b:1", "--plugin", str(wasm_file), "--timeout", "5"), "no-such-host.invalid"
    )


def test_missing_module_bad_module_bad_reference(registry: RunningRegistry, cli: Cli, tmp_path: Path) -> None:
    ref = registry.repo("missing") + ":1"
    _one_line_error(cli("push", ref, "--plugin", str(tmp_path / "nope.wasm")), "no Wasm module at")
    _one_line_error(cli("push", ref, cwd=tmp_path), "dist/plugin.wasm", "tokenusage build")
    not_wasm = tmp_path / "not.wasm"
    not_wasm.write_bytes(b"#!/bin/sh\necho hi\n")
    _one_line_error(cli("push", ref, "--plugin", str(not_wasm)), "is not a Wasm module")
    _one_line_error(cli("push", registry.host + "/no-tag", "--plugin", str(not_wasm)), "give a tag")
    _one_line_error(cli("pull", registry.repo("never") + ":1", "-o", str(tmp_path / "x")), "no manifest")


def test_verify_image_detects_a_different_module(
    registry: RunningRegistry, cli: Cli, wasm_file: Path, tmp_path: Path, wasm_factory: Callable[..., bytes]
) -> None:
    ref = registry.repo("verify") + ":1"
    _ok(cli("push", ref, "--plugin", str(wasm_file)))
    other = tmp_path / "other.wasm"
    other.write_bytes(wasm_factory("verify-other"))
    _one_line_error(cli("verify-image", ref, "--plugin", str(other)), "holds a module with sha256")


def test_json_output(registry: RunningRegistry, cli: Cli, wasm_file: Path) -> None:
    result = cli("push", registry.repo("json") + ":1", "--plugin", str(wasm_file), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["status"] == "pushed"
    assert data["url"].endswith(data["digest"])


def test_bearer_token_registry(token_registry: RunningRegistry, cli: Cli, wasm_file: Path, tmp_path: Path) -> None:
    """The Docker token flow (Docker Hub, GHCR, Harbor): 401 + Bearer challenge -> token service -> JWT."""
    ref = token_registry.repo("bearer") + ":1.0.0"
    pushed = _ok(cli("push", ref, "--plugin", str(wasm_file), *token_registry.auth_args()))
    assert pushed["status"] == "pushed"
    out = tmp_path / "out.wasm"
    _ok(cli("pull", ref, "-o", str(out), *token_registry.auth_args()))
    assert out.read_bytes() == wasm_file.read_bytes()
    _one_line_error(
        cli("push", ref, "--plugin", str(wasm_file), "--username", str(token_registry.username), "--password", "nope"),
        "authentication failed",
    )
    _one_line_error(cli("pull", ref, "-o", str(out)), "requires a login")


def test_https_registry_with_a_self_signed_certificate(
    tls_registry: RunningRegistry, cli: Cli, wasm_file: Path, tmp_path: Path
) -> None:
    ref = tls_registry.repo("tls") + ":1"
    # Loopback defaults to plain HTTP: the error says the registry speaks HTTPS and what to pass.
    _one_line_error(cli("push", ref, "--plugin", str(wasm_file)), "speaks HTTPS", "--insecure")
    pushed = _ok(cli("push", ref, "--plugin", str(wasm_file), "--insecure"))
    out = tmp_path / "tls.wasm"
    _ok(cli("pull", pushed["url"], "-o", str(out), "--insecure"))
    assert out.read_bytes() == wasm_file.read_bytes()
