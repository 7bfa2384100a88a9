{{/* Whole manifests every chart renders the same way. */}}

{{- define "common.serviceAccount" -}}
{{- if .Values.serviceAccount.create }}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "common.serviceAccountName" . }}
  namespace: {{ .Release.Namespace | quote }}
  labels:
    {{- include "common.labels.standard" . | nindent 4 }}
  {{- with .Values.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
{{- end }}
{{- end -}}

{{/* The chart's own PVC unless persistence.existingClaim names one.
     Call with (dict "context" . "suffix" "data" "keep" true): keep adds helm.sh/resource-policy. */}}
{{- define "common.pvc" -}}
{{- $ctx := .context -}}
{{- $p := $ctx.Values.persistence -}}
{{- if and $p.enabled (not $p.existingClaim) }}
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {{ include "common.claimName" . }}
  namespace: {{ $ctx.Release.Namespace | quote }}
  labels:
    {{- include "common.labels.standard" $ctx | nindent 4 }}
  {{- if or .keep $p.annotations }}
  annotations:
    {{- if .keep }}
    helm.sh/resource-policy: keep
    {{- end }}
    {{- with $p.annotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
spec:
  accessModes:
    {{- toYaml $p.accessModes | nindent 4 }}
  resources:
    requests:
      storage: {{ $p.size | quote }}
  {{- with $p.storageClass }}
  storageClassName: {{ if eq . "-" }}""{{ else }}{{ . | quote }}{{ end }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* A resource's metadata: name, namespace, the standard labels, commonAnnotations and its own
     annotations. Call with (dict "context" . "annotations" MAP). */}}
{{- define "common.metadata" -}}
{{- $ctx := .context -}}
name: {{ include "common.names.fullname" $ctx }}
namespace: {{ $ctx.Release.Namespace | quote }}
labels:
  {{- include "common.labels.standard" $ctx | nindent 2 }}
{{- if or $ctx.Values.commonAnnotations .annotations }}
annotations:
  {{- with $ctx.Values.commonAnnotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  {{- with .annotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}
{{- end -}}
