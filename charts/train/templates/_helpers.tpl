{{/* Short names for the common library chart's helpers (templates of this chart use either). */}}
{{- define "train.name" -}}{{ include "common.names.name" . }}{{- end -}}
{{- define "train.fullname" -}}{{ include "common.names.fullname" . }}{{- end -}}
{{- define "train.chart" -}}{{ include "common.names.chart" . }}{{- end -}}
{{- define "train.selectorLabels" -}}{{ include "common.labels.selector" . }}{{- end -}}
{{- define "train.labels" -}}{{ include "common.labels.standard" . }}{{- end -}}
{{- define "train.image" -}}{{ include "common.image" . }}{{- end -}}
{{- define "train.serviceAccountName" -}}{{ include "common.serviceAccountName" . }}{{- end -}}

{{/* What only the train chart has; the rest is in the common library chart. */}}

{{/* The Job's and the CronJob's pod template. */}}
{{- define "train.podTemplate" -}}
{{- include "common.batch.podTemplate" (dict "context" . "env" (include "train.env" .) "volumeMounts" "" "volumes" "" "initContainers" "") -}}
{{- end -}}

{{- define "train.env" -}}
- name: TRAIN_DATA
  value: {{ required "data is required: the URL of the prepared dataset" .Values.data | quote }}
- name: TRAIN_MODELS
  value: {{ required "models is required: the URL the model bundles are published under" .Values.models | quote }}
- name: TRAIN_NAME
  value: {{ .Values.modelName | quote }}
- name: TRAIN_EPOCHS
  value: {{ .Values.epochs | int64 | quote }}
- name: TRAIN_BATCH_SIZE
  value: {{ .Values.batchSize | int64 | quote }}
- name: TRAIN_SEED
  value: {{ .Values.seed | int64 | quote }}
- name: TRAIN_RESUME
  value: {{ .Values.resume | quote }}
{{- end -}}
