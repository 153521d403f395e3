"""Names of the API resources the operator reads and writes, and the labels it puts on them."""

from __future__ import annotations

from typing import Final

# TokenUsagePolicy: the operator's own custom resource.
POLICY_GROUP: Final = "gateway.gpustack.ai"
POLICY_VERSION: Final = "v1alpha1"
POLICY_KIND: Final = "TokenUsagePolicy"
POLICY_LIST_KIND: Final = "TokenUsagePolicyList"
POLICY_PLURAL: Final = "tokenusagepolicies"
POLICY_SINGULAR: Final = "tokenusagepolicy"
POLICY_SHORT_NAMES: Final = ("tup",)
POLICY_CATEGORIES: Final = ("gpustack",)
POLICY_API_VERSION: Final = f"{POLICY_GROUP}/{POLICY_VERSION}"
POLICY_CRD_NAME: Final = f"{POLICY_PLURAL}.{POLICY_GROUP}"

# Higress WasmPlugin: what a policy becomes.
WASM_GROUP: Final = "extensions.higress.io"
WASM_VERSION: Final = "v1alpha1"
WASM_KIND: Final = "WasmPlugin"
WASM_PLURAL: Final = "wasmplugins"
WASM_API_VERSION: Final = f"{WASM_GROUP}/{WASM_VERSION}"

# Labels and annotations linking a WasmPlugin to its policy (owner references cannot cross
# namespaces). Label values are limited to 63 characters, so the full "namespace/name" of the
# policy is an annotation; the labels are for selection.
OPERATOR_NAME: Final = "tokenusage-operator"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
LABEL_POLICY_NAMESPACE: Final = f"{POLICY_GROUP}/policy-namespace"
LABEL_POLICY_NAME: Final = f"{POLICY_GROUP}/policy-name"
ANNOTATION_POLICY: Final = f"{POLICY_GROUP}/policy"
ANNOTATION_APPLIED_HASH: Final = f"{POLICY_GROUP}/applied-hash"

# Finalizer on the policy: its WasmPlugin lives in another namespace and must be removed first.
FINALIZER: Final = f"{POLICY_GROUP}/wasmplugin-cleanup"
