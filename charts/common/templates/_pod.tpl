{{/* Pieces of a pod spec every regpipe chart shares; `.` is the calling chart's context.
     Each renders at column 0: the caller indents it. */}}

{{- define "common.pod.metadata" -}}
labels:
  {{- include "common.labels.standard" . | nindent 2 }}
  {{- with .Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with .Values.podAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "common.pod.serviceAccount" -}}
serviceAccountName: {{ include "common.serviceAccountName" . }}
automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
{{- end -}}

{{/* Pull secrets, the pod security context and scheduling. */}}
{{- define "common.pod.scheduling" -}}
{{- with .Values.image.pullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- if .Values.podSecurityContext.enabled }}
securityContext:
  {{- omit .Values.podSecurityContext "enabled" | toYaml | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . | quote }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The main container's image, pull policy and security context. */}}
{{- define "common.container.image" -}}
image: {{ include "common.image" . | quote }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
{{- if .Values.containerSecurityContext.enabled }}
securityContext:
  {{- omit .Values.containerSecurityContext "enabled" | toYaml | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The environment every service reads, then extraEnvVars and extraEnv (list items). */}}
{{- define "common.container.env" -}}
- name: HOME
  value: /tmp
- name: LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
{{- with .Values.metrics }}{{ with .pushgateway }}{{ with .url }}
- name: PUSHGATEWAY_URL
  value: {{ . | quote }}
{{- end }}{{ end }}{{ end }}
{{- with .Values.extraEnvVars }}
{{ toYaml . }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "common.container.envFrom" -}}
{{- if or .Values.extraEnvVarsCM .Values.extraEnvVarsSecret .Values.objectStore.existingSecret }}
envFrom:
  {{- with .Values.extraEnvVarsCM }}
  - configMapRef:
      name: {{ . }}
  {{- end }}
  {{- with .Values.extraEnvVarsSecret }}
  - secretRef:
      name: {{ . }}
  {{- end }}
  {{- with .Values.objectStore.existingSecret }}
  - secretRef:
      name: {{ . }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* The writable /tmp every container mounts (list item). */}}
{{- define "common.volume.tmp" -}}
- name: tmp
  emptyDir:
    {{- with .Values.tmpDir.sizeLimit }}
    sizeLimit: {{ . }}
    {{- end }}
{{- end -}}

{{/* A list value as list items on new lines, nothing when empty: extraVolumes, sidecars, ...
     Call with (list VALUE INDENT). */}}
{{- define "common.list" -}}
{{- with index . 0 }}{{ toYaml . | nindent (index $ 1) }}{{ end }}
{{- end -}}
