"""The operator: TokenUsagePolicy (gateway.gpustack.ai/v1alpha1) -> Higress WasmPlugin.

Layers (checked by import-linter): `models` <- {`crd`, `render`, `conflicts`} <- `reconcile`
<- `handlers`; `kube` <- `reconcile`/`handlers`. `crd`, `render`, `conflicts` and `kube` never
import each other. Only `kube` talks to the Kubernetes API.
"""

__all__: list[str] = []
