"""The plugin as an OCI image Higress can pull: build (manifest), send (registry), check (extract)."""

from wasm_oci.extract import Extracted, ImageFormatError, extract_module, is_valid_wasm
from wasm_oci.manifest import Blob, Image, compat_image, higress_image, plugin_tar_gz
from wasm_oci.reference import Reference

__all__ = [
    "Blob",
    "Extracted",
    "Image",
    "ImageFormatError",
    "Reference",
    "compat_image",
    "extract_module",
    "higress_image",
    "is_valid_wasm",
    "plugin_tar_gz",
]
