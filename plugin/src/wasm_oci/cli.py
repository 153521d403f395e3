"""`tokenusage push | pull | verify-image`: the plugin as an image Higress can pull.

push REF          build the image from --plugin (default dist/plugin.wasm) and push it
pull REF -o FILE  fetch an image and write the module the gateway would load
verify-image REF  check an image against Higress's fetcher rules (and, with --plugin, the bytes)

Each prints the manifest digest, the `oci://...@sha256:` URL to pin in a policy, the value for a
WasmPlugin `sha256` with that URL (Higress compares it with the image's manifest digest), and the
module's own sha256 (what `sha256` means when the module is served over http(s) instead).
Errors are one line on stderr and exit status 1.

Re-pushing a tag: the same module (same digest) is a no-op ("unchanged"); a different module under
an existing tag is refused unless --force, because gateways that already pulled the tag with
imagePullPolicy IfNotPresent would keep the old module.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import sys
from pathlib import Path
from typing import Any

from wasm_oci.credentials import Credentials, resolve_credentials
from wasm_oci.extract import Extracted, ImageFormatError, extract_module, is_valid_wasm
from wasm_oci.manifest import Image, compat_image, higress_image, plugin_spec_yaml
from wasm_oci.reference import Reference, ReferenceError
from wasm_oci.registry import RegistryClient, RegistryError, fetch_manifest, push_image

__all__ = [
    "add_arguments_push",
    "run_push",
    "add_arguments_pull",
    "run_pull",
    "add_arguments_verify_image",
    "run_verify_image",
    "build_image",
]

DEFAULT_PLUGIN_PATH = Path("dist/plugin.wasm")
PLUGIN_NAME = "gpustack-token-usage"


class _CliError(Exception):
    pass


def _add_registry_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ref", metavar="REF", help="image reference: [oci://]host[:port]/repo:tag[@sha256:...]")
    parser.add_argument("--username", help="registry user (else $TOKENUSAGE_REGISTRY_USERNAME, else Docker config)")
    parser.add_argument("--password", help="registry password or token (else $TOKENUSAGE_REGISTRY_PASSWORD)")
    parser.add_argument(
        "--plain-http",
        action="store_true",
        default=None,
        help="talk HTTP, not HTTPS (the default for localhost/127.0.0.1 registries)",
    )
    parser.add_argument("--insecure", action="store_true", help="HTTPS without verifying the certificate")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help="per-request timeout")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of lines")


def add_arguments_push(parser: argparse.ArgumentParser) -> None:
    _add_registry_arguments(parser)
    parser.add_argument("--plugin", type=Path, default=DEFAULT_PLUGIN_PATH, help="the Wasm module (default %(default)s)")
    parser.add_argument(
        "--compat",
        action="store_true",
        help="push the two-layer artifact (runtime config + raw wasm layer) instead of Higress's layout",
    )
    parser.add_argument("--force", action="store_true", help="move an existing tag that names a different image")
    parser.add_argument("--version", dest="plugin_version", help="version in spec.yaml (default: the tag)")
    parser.add_argument("--readme", type=Path, help="README.md layer (default: the packaged one)")
    parser.add_argument("--icon", type=Path, help="optional icon.png layer")


def add_arguments_pull(parser: argparse.ArgumentParser) -> None:
    _add_registry_arguments(parser)
    parser.add_argument("-o", "--output", type=Path, required=True, help="where to write the module")


def add_arguments_verify_image(parser: argparse.ArgumentParser) -> None:
    _add_registry_arguments(parser)
    parser.add_argument("--plugin", type=Path, help="the module that was pushed: its sha256 must match")


def build_image(
    module_bytes: bytes,
    *,
    compat: bool,
    version: str,
    readme_md: bytes | None = None,
    icon_png: bytes | None = None,
) -> Image:
    """The image `push` sends, from the module and metadata (deterministic)."""
    annotations = {
        "org.opencontainers.image.title": PLUGIN_NAME,
        "org.opencontainers.image.version": version,
    }
    if compat:
        return compat_image(module_bytes, annotations=annotations)
    from usage_filter.core.config import FIELDS  # the plugin's config contract -> spec.yaml schema

    properties: dict[str, Any] = {}
    for f in FIELDS:
        prop: dict[str, Any] = {"type": f.json_type, "description": f.description}
        if f.json_type == "array":
            prop["items"] = {"type": "string"}
        if f.default is not None:
            prop["default"] = f.default
        if f.minimum is not None:
            prop["minimum"] = f.minimum
        if f.maximum is not None:
            prop["maximum"] = f.maximum
        properties[f.key] = prop
    spec = plugin_spec_yaml(
        name=PLUGIN_NAME,
        version=version,
        title="GPUStack token usage",
        description="Adds TTFT, TPOT and tokens/s to the usage of LLM responses.",
        config_properties=properties,
    )
    if readme_md is None:
        readme_md = (Path(__file__).parent / "plugin_readme.md").read_bytes()
    return higress_image(module_bytes, spec_yaml=spec, readme_md=readme_md, icon_png=icon_png, annotations=annotations)


def _parse_ref(text: str) -> Reference:
    try:
        return Reference.parse(text)
    except ReferenceError as exc:
        raise _CliError(str(exc)) from exc


def _client(args: argparse.Namespace, ref: Reference) -> RegistryClient:
    creds: Credentials | None = resolve_credentials(ref.registry, username=args.username, password=args.password)
    return RegistryClient(
        ref, credentials=creds, plain_http=args.plain_http, verify_tls=not args.insecure, timeout_s=args.timeout
    )


def _read_module(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        hint = " (build it with `tokenusage build`)" if path == DEFAULT_PLUGIN_PATH else ""
        raise _CliError(f"no Wasm module at {path}{hint}") from None
    except OSError as exc:
        raise _CliError(f"cannot read {path}: {exc.strerror}") from None
    if not is_valid_wasm(data):
        raise _CliError(f"{path} is not a Wasm module (no \\0asm header)")
    return data


def _report(args: argparse.Namespace, ref: Reference, digest: str, module_bytes: bytes, **extra: Any) -> None:
    fields: dict[str, Any] = {
        **extra,
        "reference": str(ref),
        "digest": digest,
        "url": ref.pinned_url(digest),
        "wasmplugin_sha256": digest.removeprefix("sha256:"),
        "module_sha256": hashlib.sha256(module_bytes).hexdigest(),
        "module_bytes": len(module_bytes),
    }
    if args.json:
        print(json.dumps(fields, sort_keys=True))
        return
    for key, value in fields.items():
        print(f"{key}: {value}")


def _guard(name: str, fn: Any, args: argparse.Namespace) -> int:
    try:
        result: int = fn(args)
        return result
    except (_CliError, RegistryError, ImageFormatError) as exc:
        print(f"tokenusage {name}: error: {exc}", file=sys.stderr)
        return 1


def _push(args: argparse.Namespace) -> int:
    ref = _parse_ref(args.ref)
    module = _read_module(args.plugin)
    version = args.plugin_version or ref.tag or importlib.metadata.version("gpustack-token-usage")
    readme = args.readme.read_bytes() if args.readme else None
    icon = args.icon.read_bytes() if args.icon else None
    image = build_image(module, compat=args.compat, version=version, readme_md=readme, icon_png=icon)
    with _client(args, ref) as client:
        result = push_image(client, ref, image, force=args.force)
    _report(args, ref, result.digest, module, status=result.status, blobs_uploaded=result.blobs_uploaded)
    return 0


def _fetch_module(args: argparse.Namespace, ref: Reference) -> tuple[str, Extracted]:
    with _client(args, ref) as client:
        manifest = fetch_manifest(client, ref)
        extracted = extract_module(manifest.json(), client.get_blob)
    if not is_valid_wasm(extracted.module_bytes):
        raise ImageFormatError(f"{ref}: the layer the gateway would load is not a Wasm module")
    return manifest.digest, extracted


def _pull(args: argparse.Namespace) -> int:
    ref = _parse_ref(args.ref)
    digest, extracted = _fetch_module(args, ref)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(extracted.module_bytes)
    _report(args, ref, digest, extracted.module_bytes, rule=extracted.rule, output=str(args.output))
    return 0


def _verify_image(args: argparse.Namespace) -> int:
    ref = _parse_ref(args.ref)
    digest, extracted = _fetch_module(args, ref)
    if args.plugin is not None:
        expected = hashlib.sha256(_read_module(args.plugin)).hexdigest()
        actual = hashlib.sha256(extracted.module_bytes).hexdigest()
        if expected != actual:
            raise _CliError(f"{ref} holds a module with sha256 {actual}, {args.plugin} has {expected}")
    _report(args, ref, digest, extracted.module_bytes, rule=extracted.rule, verdict="ok")
    return 0


def run_push(args: argparse.Namespace) -> int:
    return _guard("push", _push, args)


def run_pull(args: argparse.Namespace) -> int:
    return _guard("pull", _pull, args)


def run_verify_image(args: argparse.Namespace) -> int:
    return _guard("verify-image", _verify_image, args)
