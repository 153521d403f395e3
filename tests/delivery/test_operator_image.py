"""operator/Dockerfile and operator/requirements.lock, checked without a container engine.

No engine runs here, so the checks are: the Dockerfile's instructions (pinned base, numeric
non-root user matching the chart, sources that exist and pass .dockerignore, entrypoint = a
registered subcommand); the lock (pinned, complete closure, covers every third-party import of
the operator, equal to the versions the tests run with); and a run of the entrypoint with only
what the image holds on sys.path.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib.metadata
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tokenusage.cli import SUBCOMMANDS

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "operator" / "Dockerfile"
LOCK = REPO / "operator" / "requirements.lock"
CHART_VALUES = REPO / "charts" / "gpustack-token-usage-operator" / "values.yaml"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _lock() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([A-Za-z0-9.+!-]+)", line)
        assert match, f"not an exact pin: {line!r}"
        pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def test_base_image_is_pinned_and_user_is_the_charts_non_root_user() -> None:
    instructions = _instructions()
    args = {k: v for w, a in instructions if w == "ARG" for k, _, v in [a.partition("=")]}
    bases = [a.split(" AS ")[0].strip() for w, a in instructions if w == "FROM"]
    assert bases, "no FROM"
    for base in bases:
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)
        name, _, tag = image.partition(":")
        assert tag and tag != "latest" and re.match(r"^\d+\.\d+\.\d+", tag), f"unpinned base image {image}"
    users = [a for w, a in instructions if w == "USER"]
    assert users, "the image must not run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, "numeric non-root user (runAsNonRoot can only verify numbers)"
    chart_uid = yaml.safe_load(CHART_VALUES.read_text())["podSecurityContext"]["runAsUser"]
    assert int(uid) == chart_uid
    assert gid.isdigit() and int(gid) != 0


def test_entrypoint_is_the_registered_operator_subcommand() -> None:
    (entrypoint,) = [a for w, a in _instructions() if w == "ENTRYPOINT"]
    argv = yaml.safe_load(entrypoint)  # exec form: a JSON array
    assert argv[:3] == ["python", "-m", "tokenusage"]
    assert argv[3] in SUBCOMMANDS
    assert SUBCOMMANDS[argv[3]][0].startswith("usage_operator.")


def _copies() -> list[tuple[str, str]]:
    out = []
    for word, args in _instructions():
        if word == "COPY" and "--from=" not in args:
            source, dest = args.split()[-2:]
            out.append((source, dest))
    return out


def test_copied_sources_exist_and_pass_dockerignore() -> None:
    patterns = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines() if line.strip() and not line.startswith("#")]
    for source, _dest in _copies():
        assert (REPO / source).exists(), f"COPY {source}: not in the repository"
        included = False
        for pattern in patterns:  # last match wins, as in Docker
            negate = pattern.startswith("!")
            pat = pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(source.rstrip("/"), pat) or source.startswith(pat + "/"):
                included = negate
        assert included, f"COPY {source} is excluded by .dockerignore"


def _third_party_imports(package_dir: Path) -> set[str]:
    local = {"tokenusage", "usage_filter", "usage_operator"}
    stdlib = set(sys.stdlib_module_names)
    found: set[str] = set()
    for path in package_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found |= {n.split(".")[0] for n in names} - stdlib - local - {"__future__"}
    return found


def test_lock_covers_the_operators_imports_with_the_tested_versions() -> None:
    pins = _lock()
    module_to_dists = importlib.metadata.packages_distributions()
    operator_code = REPO / "operator" / "src" / "usage_operator"
    for module in sorted(_third_party_imports(operator_code) | _third_party_imports(REPO / "plugin/src/usage_filter/core")):
        dists = {canonicalize_name(d) for d in module_to_dists.get(module, [])}
        assert dists, f"{module}: imported by the operator but no installed distribution provides it"
        assert dists & pins.keys(), f"{module} ({', '.join(sorted(dists))}) is not in operator/requirements.lock"
    for name, version in pins.items():
        assert importlib.metadata.version(name) == version, (
            f"lock pins {name}=={version}, tests run {importlib.metadata.version(name)}: regenerate the lock"
        )


def test_lock_satisfies_pyproject_and_is_a_closed_set() -> None:
    pins = _lock()
    import tomllib

    declared = [Requirement(r) for r in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]]
    for req in declared:
        name = canonicalize_name(req.name)
        if name in pins:
            assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} violates {req}"
    env = {**default_environment(), "python_version": "3.11", "sys_platform": "linux", "platform_system": "Linux"}
    for name in pins:
        for raw in importlib.metadata.requires(name) or []:
            req = Requirement(raw)
            if req.marker is not None and not req.marker.evaluate({**env, "extra": ""}):
                continue
            dep = canonicalize_name(req.name)
            assert dep in pins, f"{name} needs {req}, which the lock does not pin"
            assert req.specifier.contains(pins[dep], prereleases=True), f"{name} needs {req}; lock has {pins[dep]}"


def test_entrypoint_runs_with_only_the_images_files(tmp_path: Path) -> None:
    """The image's sys.path: the copied packages + the locked site-packages, no editable install."""
    app = tmp_path / "app"
    for source, dest in _copies():
        if dest.startswith("/app/"):
            shutil.copytree(REPO / source, app / Path(dest).name, ignore=shutil.ignore_patterns("__pycache__"))
    site_packages = sysconfig.get_paths()["purelib"]
    env = {"PYTHONPATH": f"{app}:{site_packages}", "PYTHONDONTWRITEBYTECODE": "1", "PATH": "/usr/bin:/bin"}
    probe = (
        "import runpy, sys, usage_operator.handlers, tokenusage;"
        f"assert tokenusage.__file__.startswith({str(app)!r}), tokenusage.__file__;"
        "sys.argv = ['tokenusage', 'operator', '--help'];"
        "runpy.run_module('tokenusage', run_name='__main__')"
    )
    # -S: no site module, so no .pth files and no editable-install finder: only PYTHONPATH counts.
    result = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "TOKENUSAGE_OPERATOR_" in result.stdout


@pytest.mark.parametrize("path", [".dockerignore", "operator/Dockerfile", "operator/requirements.lock"])
def test_image_inputs_are_committed_files(path: str) -> None:
    assert (REPO / path).is_file()
