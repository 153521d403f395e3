"""The GitHub workflows call the project's own, tested commands, with arguments those commands accept.

Every `tokenusage ...` line a workflow runs is parsed by the real argparse parser of that
subcommand (after substituting sample values for shell and `${{ }}` expressions), every `make X`
names a Makefile target, and files the workflows point at exist. The commands themselves are
exercised by the rest of tests/delivery against real registries.
"""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from tokenusage import cli as tokenusage_cli

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
SAMPLE_VALUES = {
    "REGISTRY": "ghcr.io",
    "owner": "gpustack",
    "version": "1.2.3",
    "ref": "ghcr.io/gpustack/gpustack-token-usage-plugin:1.2.3",
    "PLUGIN_URL": "oci://ghcr.io/gpustack/gpustack-token-usage-plugin@sha256:" + "d" * 64,
    "GITHUB_REF_NAME": "v1.2.3",
}


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    if True in data:  # YAML 1.1 reads the key `on` as a boolean
        data["on"] = data.pop(True)
    return data


def _steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def _substitute(text: str) -> str:
    text = re.sub(r"\$\{\{[^}]*\}\}", "expr", text)
    text = re.sub(r"\$\{(\w+)#v\}", lambda m: SAMPLE_VALUES.get(m.group(1), "x").removeprefix("v"), text)
    text = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: SAMPLE_VALUES.get(m.group(1) or m.group(2), "x"), text)
    return text


def _commands(script: str) -> list[list[str]]:
    """Simple commands of a `run:` script (pipelines and && chains split), shell-split."""
    commands = []
    for line in script.replace("\\\n", " ").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or line.startswith("echo ") or re.match(r"^\w+=", line):
            continue
        for segment in re.split(r"\s*(?:&&|\|\||\||;)\s*", _substitute(line)):
            if segment:
                commands.append(shlex.split(segment))
    return commands


def _all_commands() -> list[tuple[str, list[str]]]:
    out = []
    for path in WORKFLOWS:
        for step in _steps(_load(path)):
            for argv in _commands(step.get("run", "")):
                out.append((path.name, argv))
    return out


def _makefile_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w-]*):", text, flags=re.MULTILINE))


def _parse_tokenusage(argv: list[str]) -> argparse.Namespace:
    name, rest = argv[0], argv[1:]
    assert name in tokenusage_cli.SUBCOMMANDS, f"tokenusage {name}: not a registered subcommand"
    module = importlib.import_module(tokenusage_cli.SUBCOMMANDS[name][0])
    parser = argparse.ArgumentParser(prog=f"tokenusage {name}", exit_on_error=False)
    tokenusage_cli._add(module, name, parser)
    try:
        return parser.parse_args(rest)
    except SystemExit as exc:  # argparse reports some errors by exiting
        raise AssertionError(f"tokenusage {shlex.join(argv)}: rejected by its parser") from exc


def test_there_are_workflows() -> None:
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "release.yml"}


def test_every_command_is_a_project_command_with_valid_arguments() -> None:
    targets = _makefile_targets()
    seen_tokenusage = []
    for workflow, argv in _all_commands():
        program = argv[0]
        if program.endswith("tokenusage"):
            args = _parse_tokenusage(argv[1:])
            seen_tokenusage.append((argv[1], getattr(args, "action", None)))
        elif program == "make":
            assert argv[1:] and all(t in targets for t in argv[1:]), f"{workflow}: make {argv[1:]}: no such target"
        elif program in ("tee", "python3", "tr"):
            continue  # plumbing around the project's commands
        else:
            pytest.fail(f"{workflow}: runs {shlex.join(argv)}; workflows call project commands (make, tokenusage)")
    assert seen_tokenusage, "no tokenusage command found: is the parser broken?"


def test_pull_requests_run_the_readme_test_command() -> None:
    ci = _load(REPO / ".github" / "workflows" / "ci.yml")
    assert "pull_request" in ci["on"]
    runs = [argv for step in _steps(ci) for argv in _commands(step.get("run", ""))]
    assert runs == [["make", "setup"], ["make", "test"]]
    readme = (REPO / "README.md").read_text()
    assert "make test" in readme
    ci_run = (REPO / ".ci" / "run").read_text()
    assert "make setup" in ci_run and "make test" in ci_run  # the same commands as CI here


def test_release_publishes_all_three_artifacts_with_tested_commands() -> None:
    release = _load(REPO / ".github" / "workflows" / "release.yml")
    assert release["on"]["push"]["tags"]
    commands = [argv for step in _steps(release) for argv in _commands(step.get("run", ""))]
    tokenusage_calls = [argv[1:3] for argv in commands if argv[0].endswith("tokenusage")]
    for expected in (["build"], ["push"], ["verify-image"], ["chart", "lint"], ["chart", "package"], ["chart", "push"]):
        assert any(call[: len(expected)] == expected for call in tokenusage_calls), f"release never runs tokenusage {expected}"
    jobs = release["jobs"]
    # Publishing waits for the test suite; the chart waits for both images (it pins the plugin URL).
    for name in ("plugin-image", "operator-image"):
        assert jobs[name]["needs"] == "test"
    assert set(jobs["chart"]["needs"]) == {"plugin-image", "operator-image"}
    builds = [s for s in _steps(release) if str(s.get("uses", "")).startswith("docker/build-push-action@")]
    assert len(builds) == 1 and (REPO / builds[0]["with"]["file"]).is_file()
    assert builds[0]["with"]["context"] == "."  # .dockerignore and COPY paths are relative to the root


def test_actions_are_pinned_and_referenced_files_exist() -> None:
    for path in WORKFLOWS:
        for step in _steps(_load(path)):
            uses = step.get("uses")
            if uses:
                assert re.match(r"^[\w.-]+/[\w.-]+@(v\d+|[0-9a-f]{40})$", uses), f"{path.name}: unpinned {uses}"
            for key in ("go-version-file", "file"):
                value = (step.get("with") or {}).get(key)
                if value:
                    assert (REPO / value).is_file(), f"{path.name}: {key} {value} does not exist"
