"""`tokenusage chart lint | template | package | push`: the operator's Helm chart, with real Helm.

Helm comes from PyPI `helm-python-sdk` (Helm's Go SDK behind a C ABI; a dev dependency), so no
`helm` binary is needed. The release workflow runs `package` then `push`; the tests run all four.

package --default-plugin-image URL writes that URL into the packaged values.yaml (the chart in
the tree is not touched), so a release chart installs the plugin image built with it, pinned.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import yaml

__all__ = ["add_arguments", "run", "DEFAULT_CHART_DIR"]

DEFAULT_CHART_DIR = Path("charts/gpustack-token-usage-operator")
_SEMVER_RE = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
# The one values.yaml line `package --default-plugin-image` rewrites (checked after, by parsing).
_PLUGIN_IMAGE_LINE_RE = re.compile(r'^(  defaultPluginImage: )""$', re.MULTILINE)


class _CliError(Exception):
    pass


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    lint = actions.add_parser("lint", help="helm lint --strict, with the defaults and each ci/*-values.yaml")
    lint.add_argument("--chart", type=Path, default=DEFAULT_CHART_DIR, help="chart directory (default %(default)s)")
    lint.add_argument("-f", "--values", type=Path, action="append", default=[], help="values file (repeat)")

    template = actions.add_parser("template", help="render the chart's manifests offline (helm template)")
    template.add_argument("--chart", type=Path, default=DEFAULT_CHART_DIR, help="chart directory or .tgz")
    template.add_argument("-f", "--values", type=Path, action="append", default=[], help="values file (repeat)")
    template.add_argument("--name", default="tokenusage", help="release name (default %(default)s)")
    template.add_argument("--namespace", default="tokenusage-system", help="release namespace (default %(default)s)")

    package = actions.add_parser("package", help="package the chart into a .tgz")
    package.add_argument("--chart", type=Path, default=DEFAULT_CHART_DIR, help="chart directory (default %(default)s)")
    package.add_argument("--version", help="chart version, semver; a leading v is dropped (default: Chart.yaml)")
    package.add_argument("--app-version", help="appVersion = default operator image tag (default: --version)")
    package.add_argument("--default-plugin-image", help="operator.defaultPluginImage in the packaged values.yaml")
    package.add_argument("-d", "--destination", type=Path, default=Path("dist"), help="output directory (default %(default)s)")

    push = actions.add_parser("push", help="push a packaged chart to an OCI registry")
    push.add_argument("archive", type=Path, help="the .tgz from `tokenusage chart package`")
    push.add_argument("remote", help="oci://host[:port]/path (the chart name and version come from the archive)")
    push.add_argument("--username", help="registry user (else $TOKENUSAGE_REGISTRY_USERNAME, else Docker config)")
    push.add_argument("--password", help="registry password or token (else $TOKENUSAGE_REGISTRY_PASSWORD)")
    push.add_argument("--plain-http", action="store_true", help="talk HTTP, not HTTPS")
    push.add_argument("--insecure", action="store_true", help="HTTPS without verifying the certificate")


def _helm() -> Any:
    try:
        import helm_python
    except ImportError as exc:  # a runtime-only install has no dev extras
        raise _CliError("needs helm-python-sdk: pip install 'gpustack-token-usage[dev]'") from exc
    return helm_python


def _values(paths: list[Path]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for path in paths:
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except OSError as exc:
            raise _CliError(f"cannot read {path}: {exc.strerror}") from None
        merged = _deep_merge(merged, data)
    return merged


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _lint(args: argparse.Namespace) -> int:
    helm = _helm()
    scenarios: list[tuple[str, dict[str, Any]]] = []
    if args.values:
        scenarios.append((", ".join(map(str, args.values)), _values(args.values)))
    else:
        scenarios.append(("defaults", {}))
        scenarios += [(str(p), _values([p])) for p in sorted((args.chart / "ci").glob("*-values.yaml"))]
    failed = 0
    for label, values in scenarios:
        report = helm.lint(args.chart, values, strict=True)
        problems = [m for m in report["messages"] if m["severity"] >= 2] + [{"error": e} for e in report["errors"]]
        for problem in problems:
            print(f"{args.chart} [{label}]: {problem.get('path', '')} {problem['error']}".strip(), file=sys.stderr)
        failed += bool(problems)
        print(f"{'FAIL' if problems else 'ok'}: {args.chart} [{label}]")
    return 1 if failed else 0


def _template(args: argparse.Namespace) -> int:
    helm = _helm()
    chart = helm.Chart.load_archive(args.chart.read_bytes()) if args.chart.suffix == ".tgz" else helm.Chart.load(args.chart)
    with chart:
        manifests = chart.render(_values(args.values), name=args.name, namespace=args.namespace, is_install=True)
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt") or not text.strip():
            continue
        sys.stdout.write(f"---\n# Source: {path}\n{text.strip()}\n")
    return 0


def _package(args: argparse.Namespace) -> int:
    helm = _helm()
    version = args.version.removeprefix("v") if args.version else None
    if version is not None and not _SEMVER_RE.match(version):
        raise _CliError(f"--version {args.version!r} is not semver (X.Y.Z)")
    app_version = args.app_version.removeprefix("v") if args.app_version else version
    args.destination.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        chart_dir = args.chart
        if args.default_plugin_image:
            # Package a copy (symlinks resolved: crds/ is a link to the generated top-level crds/).
            chart_dir = Path(tmp) / args.chart.name
            shutil.copytree(args.chart, chart_dir, symlinks=False)
            _set_default_plugin_image(chart_dir / "values.yaml", args.default_plugin_image)
        archive = helm.package(chart_dir, destination=args.destination, version=version, app_version=app_version)
    print(f"archive: {archive}")
    print(f"digest: {helm.digest(archive)}")
    return 0


def _set_default_plugin_image(values_path: Path, url: str) -> None:
    if not re.match(r"^(oci|https?|file)://\S+$", url):
        raise _CliError(f"--default-plugin-image {url!r}: expected oci://, http(s):// or file:// URL")
    text = values_path.read_text()
    new_text, count = _PLUGIN_IMAGE_LINE_RE.subn(lambda m: m.group(1) + json.dumps(url), text)
    if count != 1:
        raise _CliError(f"{values_path}: expected one empty `  defaultPluginImage: \"\"` line to fill")
    if (yaml.safe_load(new_text) or {}).get("operator", {}).get("defaultPluginImage") != url:
        raise _CliError(f"{values_path}: defaultPluginImage did not take the value")  # pragma: no cover
    values_path.write_text(new_text)


def _push(args: argparse.Namespace) -> int:
    helm = _helm()
    from wasm_oci.credentials import resolve_credentials

    if not args.remote.startswith("oci://"):
        raise _CliError(f"remote {args.remote!r} must start with oci://")
    if not args.archive.is_file():
        raise _CliError(f"no chart archive at {args.archive} (run `tokenusage chart package`)")
    host = args.remote[len("oci://") :].split("/", 1)[0]
    creds = resolve_credentials(host, username=args.username, password=args.password)
    with tempfile.TemporaryDirectory() as tmp:
        # A throwaway credentials file: pushing never edits the user's Helm or Docker login.
        client = helm.RegistryClient(plain_http=args.plain_http, credentials_file=Path(tmp) / "config.json")
        with client:
            try:
                if creds is not None:
                    client.login(host, creds.username, creds.password, insecure=args.insecure, plain_http=args.plain_http)
                client.push(args.archive, args.remote, plain_http=args.plain_http, insecure_skip_tls_verify=args.insecure)
                name, version = _archive_identity(args.archive)
                ref = f"{args.remote.rstrip('/')}/{name}:{version}"
                digest = client.resolve(ref)["digest"]
            except helm.HelmError as exc:
                raise _CliError(_helm_message(exc)) from None
    print(f"ref: {ref}")
    print(f"digest: {digest}")
    print(f"install: helm install tokenusage {ref.rsplit(':', 1)[0]} --version {version}")
    return 0


def _archive_identity(archive: Path) -> tuple[str, str]:
    """(name, version) from the Chart.yaml inside a packaged chart."""
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if member.name.count("/") == 1 and member.name.endswith("/Chart.yaml"):
                data = yaml.safe_load(tar.extractfile(member).read())  # type: ignore[union-attr]
                return str(data["name"]), str(data["version"])
    raise _CliError(f"{archive} has no Chart.yaml")  # pragma: no cover - helm push checked it


def _helm_message(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:300]


def run(args: argparse.Namespace) -> int:
    action = {"lint": _lint, "template": _template, "package": _package, "push": _push}[args.action]
    try:
        return action(args)
    except _CliError as exc:
        print(f"tokenusage chart {args.action}: error: {exc}", file=sys.stderr)
        return 1
