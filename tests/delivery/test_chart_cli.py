"""`tokenusage chart lint | template | package | push`: what the release workflow runs, for real."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from wasm_oci.reference import Reference
from wasm_oci.registry import RegistryClient, fetch_manifest

from .conftest import CliResult, RunningRegistry

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "gpustack-token-usage-operator"
PLUGIN_URL = "oci://registry.example.com/plugins/gpustack-token-usage@sha256:" + "c" * 64
HELM_CONFIG_MEDIA_TYPE = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART_LAYER_MEDIA_TYPE = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"

Cli = Callable[..., CliResult]


def _package(cli: Cli, tmp_path: Path, *extra: str) -> Path:
    result = cli("chart", "package", "--chart", str(CHART), "-d", str(tmp_path), *extra)
    assert result.returncode == 0, result.stderr
    archive = Path(result.fields()["archive"])
    assert archive.is_file() and archive.parent == tmp_path
    return archive


def test_lint_passes_for_defaults_and_ci_scenarios(cli: Cli) -> None:
    result = cli("chart", "lint", "--chart", str(CHART))
    assert result.returncode == 0, result.stdout + result.stderr
    checked = [line for line in result.stdout.splitlines() if line.startswith("ok: ")]
    assert len(checked) == 1 + len(list((CHART / "ci").glob("*-values.yaml")))


def test_lint_fails_on_a_broken_chart(cli: Cli, tmp_path: Path) -> None:
    broken = tmp_path / "chart"
    broken.mkdir()
    (broken / "Chart.yaml").write_text("apiVersion: v2\nname: broken\nversion: 0.1.0\n")
    (broken / "templates").mkdir()
    (broken / "templates" / "x.yaml").write_text("kind: ConfigMap\nmetadata: {{ .Values.nope.deeper }}\n")
    result = cli("chart", "lint", "--chart", str(broken))
    assert result.returncode == 1
    assert "FAIL" in result.stdout


def test_package_sets_versions_and_pins_the_plugin_image(cli: Cli, tmp_path: Path) -> None:
    archive = _package(cli, tmp_path, "--version", "v1.4.0", "--default-plugin-image", PLUGIN_URL)
    assert archive.name == "gpustack-token-usage-operator-1.4.0.tgz"
    with tarfile.open(archive) as tar:
        chart_yaml = yaml.safe_load(tar.extractfile("gpustack-token-usage-operator/Chart.yaml").read())  # type: ignore[union-attr]
        packaged_values = tar.extractfile("gpustack-token-usage-operator/values.yaml").read().decode()  # type: ignore[union-attr]
    assert (chart_yaml["version"], chart_yaml["appVersion"]) == ("1.4.0", "1.4.0")
    assert yaml.safe_load(packaged_values)["operator"]["defaultPluginImage"] == PLUGIN_URL
    assert "# -- Plugin image for policies" in packaged_values  # comments survive
    assert (CHART / "values.yaml").read_text().count('defaultPluginImage: ""') == 1  # tree untouched

    rendered = cli("chart", "template", "--chart", str(archive), "--namespace", "ops")
    assert rendered.returncode == 0, rendered.stderr
    docs = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TOKENUSAGE_OPERATOR_DEFAULT_PLUGIN_IMAGE"] == PLUGIN_URL
    assert container["image"].endswith(":1.4.0")  # the operator image of the same release


@pytest.mark.parametrize("bad", ["1.4", "latest", "v1.x.0"])
def test_package_rejects_non_semver(cli: Cli, tmp_path: Path, bad: str) -> None:
    result = cli("chart", "package", "--chart", str(CHART), "-d", str(tmp_path), "--version", bad)
    assert result.returncode == 1
    assert "not semver" in result.stderr


@pytest.mark.registry
@pytest.mark.parametrize("reg_name", ["registry", "auth_registry"])
def test_push_to_a_registry_and_read_it_back(
    request: pytest.FixtureRequest, reg_name: str, cli: Cli, tmp_path: Path
) -> None:
    reg: RunningRegistry = request.getfixturevalue(reg_name)
    archive = _package(cli, tmp_path, "--version", "0.9.0")
    remote = f"oci://{reg.host}/charts-{reg_name}"
    pushed = cli("chart", "push", str(archive), remote, "--plain-http", *reg.auth_args())
    assert pushed.returncode == 0, pushed.stderr

    ref = Reference.parse(f"{reg.host}/charts-{reg_name}/gpustack-token-usage-operator:0.9.0")
    from wasm_oci.credentials import Credentials

    creds = Credentials(reg.username, reg.password) if reg.username and reg.password else None
    with RegistryClient(ref, credentials=creds) as client:
        manifest = fetch_manifest(client, ref)
        body = manifest.json()
        assert body["config"]["mediaType"] == HELM_CONFIG_MEDIA_TYPE
        (layer,) = body["layers"]
        assert layer["mediaType"] == HELM_CHART_LAYER_MEDIA_TYPE
        assert client.get_blob(layer) == archive.read_bytes()
        config = json.loads(client.get_blob(body["config"]))
    assert (config["name"], config["version"]) == ("gpustack-token-usage-operator", "0.9.0")
    assert pushed.fields()["digest"] == manifest.digest
    assert pushed.fields()["ref"] == f"{remote}/gpustack-token-usage-operator:0.9.0"


@pytest.mark.registry
def test_push_with_a_wrong_password_is_one_line(auth_registry: RunningRegistry, cli: Cli, tmp_path: Path) -> None:
    archive = _package(cli, tmp_path)
    result = cli(
        "chart", "push", str(archive), f"oci://{auth_registry.host}/charts", "--plain-http",
        "--username", str(auth_registry.username), "--password", "wrong",
    )
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "wrong" not in result.stderr
