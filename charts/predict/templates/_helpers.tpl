{{/* Short names for the common library chart's helpers (templates of this chart use either). */}}
{{- define "predict.name" -}}{{ include "common.names.name" . }}{{- end -}}
{{- define "predict.fullname" -}}{{ include "common.names.fullname" . }}{{- end -}}
{{- define "predict.chart" -}}{{ include "common.names.chart" . }}{{- end -}}
{{- define "predict.selectorLabels" -}}{{ include "common.labels.selector" . }}{{- end -}}
{{- define "predict.labels" -}}{{ include "common.labels.standard" . }}{{- end -}}
{{- define "predict.image" -}}{{ include "common.image" . }}{{- end -}}
{{- define "predict.serviceAccountName" -}}{{ include "common.serviceAccountName" . }}{{- end -}}
{{/* Seconds the pod gets to stop: gunicorn's graceful timeout plus a margin for the preStop delay. */}}
{{- define "predict.terminationGracePeriodSeconds" -}}
{{- add .Values.server.gracefulTimeout .Values.server.preStopDelay 5 -}}
{{- end -}}

{{- /* The metadata of a PrometheusRule named "name": metrics.prometheusRule's namespace (else the
release's) and labels beside the chart's. */ -}}
{{- define "predict.prometheusRule.metadata" -}}
{{- $rule := .context.Values.metrics.prometheusRule -}}
name: {{ .name }}
namespace: {{ $rule.namespace | default .context.Release.Namespace | quote }}
labels:
  {{- include "predict.labels" .context | nindent 2 }}
  {{- with $rule.labels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}
