{{/* Names and labels, defined once. Selector labels are separate: a Deployment's selector is immutable. */}}

{{- define "gpustack-token-usage-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-scoped name, at most 63 characters (a DNS label). */}}
{{- define "gpustack-token-usage-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "gpustack-token-usage-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gpustack-token-usage-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gpustack-token-usage-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "gpustack-token-usage-operator.labels" -}}
helm.sh/chart: {{ include "gpustack-token-usage-operator.chart" . }}
{{ include "gpustack-token-usage-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: gpustack-token-usage
{{- end }}

{{- define "gpustack-token-usage-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gpustack-token-usage-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository[:tag][@digest]; the digest pins the image when set. */}}
{{- define "gpustack-token-usage-operator.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* True (non-empty) when the operator watches every namespace: RBAC is then a ClusterRole. */}}
{{- define "gpustack-token-usage-operator.clusterWide" -}}
{{- if not .Values.operator.watchNamespaces }}true{{- end }}
{{- end }}

{{/* The rules that apply in every watched namespace (ClusterRole or one Role per namespace). */}}
{{- define "gpustack-token-usage-operator.watchRules" -}}
- apiGroups: ["gateway.gpustack.ai"]
  resources: ["tokenusagepolicies"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["gateway.gpustack.ai"]
  resources: ["tokenusagepolicies/status"]
  verbs: ["get", "patch"]
- apiGroups: ["extensions.higress.io"]
  resources: ["wasmplugins"]
  verbs: ["list", "watch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}

{{/* JSON list of the namespaces kopf watches in namespaced mode (listed + gateway); [] when cluster-wide. */}}
{{- define "gpustack-token-usage-operator.kopfNamespaces" -}}
{{- if .Values.operator.watchNamespaces }}
{{- append .Values.operator.watchNamespaces .Values.operator.gatewayNamespace | uniq | sortAlpha | toJson }}
{{- else }}
{{- list | toJson }}
{{- end }}
{{- end }}
