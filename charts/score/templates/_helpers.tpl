{{/* Short names for the common library chart's helpers (templates of this chart use either). */}}
{{- define "score.name" -}}{{ include "common.names.name" . }}{{- end -}}
{{- define "score.fullname" -}}{{ include "common.names.fullname" . }}{{- end -}}
{{- define "score.chart" -}}{{ include "common.names.chart" . }}{{- end -}}
{{- define "score.selectorLabels" -}}{{ include "common.labels.selector" . }}{{- end -}}
{{- define "score.labels" -}}{{ include "common.labels.standard" . }}{{- end -}}
{{- define "score.image" -}}{{ include "common.image" . }}{{- end -}}
{{- define "score.serviceAccountName" -}}{{ include "common.serviceAccountName" . }}{{- end -}}

{{/* What only the score chart has; the rest is in the common library chart. */}}

{{/* The Job's and the CronJob's pod template. */}}
{{- define "score.podTemplate" -}}
{{- include "common.batch.podTemplate" (dict "context" . "env" (include "score.env" .) "volumeMounts" "" "volumes" "" "initContainers" "") -}}
{{- end -}}

{{- define "score.env" -}}
- name: SCORE_INPUT
  value: {{ required "input is required: a prepared dataset's split" .Values.input | quote }}
- name: SCORE_MODEL
  value: {{ required "model is required: <models>/<name> or <models>/<name>@<version>" .Values.model | quote }}
- name: SCORE_OUTPUT
  value: {{ required "output is required: the URL of the scored dataset" .Values.output | quote }}
{{- with .Values.spec }}
- name: SCORE_SPEC
  value: {{ . | quote }}
{{- end }}
{{- with .Values.key }}
- name: SCORE_KEY
  value: {{ join "," . | quote }}
{{- end }}
- name: SCORE_ON_MISSING
  value: {{ .Values.onMissing | quote }}
{{- end -}}
