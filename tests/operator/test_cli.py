"""`tokenusage render`: the README's command, run as users run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def tokenusage(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tokenusage", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},  # no TOKENUSAGE_OPERATOR_* from the caller
    )


def test_render_example_matches_golden() -> None:
    result = tokenusage("render", "examples/policy.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (ROOT / "tests/operator/golden/example.wasmplugin.yaml").read_text()


def test_render_invalid_policy_names_the_field() -> None:
    policy = "apiVersion: gateway.gpustack.ai/v1alpha1\nkind: TokenUsagePolicy\nmetadata: {name: p}\nspec: {realIPToHeader: Host}\n"
    result = tokenusage("render", "-", stdin=policy)
    assert result.returncode == 1
    assert "spec.realIPToHeader" in result.stderr
    assert result.stdout == ""


def test_render_options_and_no_policy() -> None:
    policy = "apiVersion: gateway.gpustack.ai/v1alpha1\nkind: TokenUsagePolicy\nmetadata: {name: p}\n"
    result = tokenusage("render", "-", "--gateway-namespace", "gw", "--default-plugin-image", "oci://r/p:2", stdin=policy)
    assert result.returncode == 0, result.stderr
    assert "namespace: gw" in result.stdout and "url: oci://r/p:2" in result.stdout
    assert tokenusage("render", "-", stdin="kind: ConfigMap\n").returncode == 2


def test_render_missing_file_is_one_line() -> None:
    result = tokenusage("render", "no/such/policy.yaml")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: cannot read no/such/policy.yaml: No such file or directory"


def test_render_explains_refused_values_without_regexes() -> None:
    # A user report: pattern errors used to print the raw regex.
    policy = (
        "apiVersion: gateway.gpustack.ai/v1alpha1\nkind: TokenUsagePolicy\nmetadata: {name: p}\n"
        'spec: {realIPToHeader: "bad header", enableOnPathSuffix: [chat], pluginImage: "ftp://x"}\n'
    )
    result = tokenusage("render", "-", stdin=policy)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "error: default/p: spec.realIPToHeader: \"bad header\" is not a header name (an RFC 9110 token: letters, digits and !#$%&'*+-.^_`|~)",
        "error: default/p: spec.enableOnPathSuffix.0: \"chat\" is not a path suffix: starts with '/', no '?', '#', whitespace or trailing '/'",
        'error: default/p: spec.pluginImage: "ftp://x" is not oci://REPOSITORY[:TAG][@sha256:DIGEST], http(s)://URL or file://PATH',
    ]


def test_render_model_rule_errors_name_spec_not_an_empty_path() -> None:
    policy = (
        "apiVersion: gateway.gpustack.ai/v1alpha1\nkind: TokenUsagePolicy\nmetadata: {name: p}\n"
        "spec: {realIPToHeader: x-b, realIPHeader: x-a}\n"
    )
    result = tokenusage("render", "-", stdin=policy)
    assert result.returncode == 1
    assert result.stderr.startswith("error: default/p: spec: realIPHeader")
    assert "spec.:" not in result.stderr and "Value error" not in result.stderr
