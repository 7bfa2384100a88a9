{{- define "preprocess.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified app name: the release name when it already contains the chart name. */}}
{{- define "preprocess.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "preprocess.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "preprocess.selectorLabels" -}}
app.kubernetes.io/name: {{ include "preprocess.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: preprocess
{{- end -}}

{{- define "preprocess.labels" -}}
helm.sh/chart: {{ include "preprocess.chart" . }}
{{ include "preprocess.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | toString | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/part-of: regpipe
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* registry/repository:tag or registry/repository@digest (bitnami convention). */}}
{{- define "preprocess.image" -}}
{{- $repository := .Values.image.repository -}}
{{- if .Values.image.registry -}}
{{- $repository = printf "%s/%s" .Values.image.registry .Values.image.repository -}}
{{- end -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (.Values.image.tag | default .Chart.AppVersion | toString) -}}
{{- end -}}
{{- end -}}

{{- define "preprocess.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "preprocess.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "preprocess.specConfigMapName" -}}
{{- .Values.spec.existingConfigMap | default (printf "%s-spec" (include "preprocess.fullname" .)) -}}
{{- end -}}

{{- define "preprocess.claimName" -}}
{{- .Values.persistence.existingClaim | default (printf "%s-data" (include "preprocess.fullname" .)) -}}
{{- end -}}

{{/* The pod template shared by the Job and the CronJob. */}}
{{- define "preprocess.podTemplate" -}}
metadata:
  labels:
    {{- include "preprocess.labels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .Values.podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  restartPolicy: Never
  serviceAccountName: {{ include "preprocess.serviceAccountName" . }}
  automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
  {{- with .Values.image.pullSecrets }}
  imagePullSecrets:
    {{- range . }}
    - name: {{ . }}
    {{- end }}
  {{- end }}
  {{- if .Values.podSecurityContext.enabled }}
  securityContext:
    {{- omit .Values.podSecurityContext "enabled" | toYaml | nindent 4 }}
  {{- end }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . | quote }}
  {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: preprocess
      image: {{ include "preprocess.image" . | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      {{- if .Values.containerSecurityContext.enabled }}
      securityContext:
        {{- omit .Values.containerSecurityContext "enabled" | toYaml | nindent 8 }}
      {{- end }}
      {{- with .Values.extraArgs }}
      args:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      env:
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
        {{- if .Values.dask.enabled }}
        - name: DASK_SCHEDULER_ADDRESS
          value: {{ required "dask.schedulerAddress is required when dask.enabled" .Values.dask.schedulerAddress | quote }}
        {{- end }}
        - name: HOME
          value: /tmp
        - name: LOG_LEVEL
          value: {{ .Values.logLevel | quote }}
        - name: LOG_FORMAT
          value: {{ .Values.logFormat | quote }}
        {{- with .Values.metrics.pushgateway.url }}
        - name: PUSHGATEWAY_URL
          value: {{ . | quote }}
        {{- end }}
        {{- with .Values.extraEnvVars }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
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
      {{- with .Values.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        - name: spec
          mountPath: /etc/regpipe/spec
          readOnly: true
        {{- if .Values.persistence.enabled }}
        - name: data
          mountPath: {{ .Values.persistence.mountPath }}
        {{- end }}
  volumes:
    - name: tmp
      emptyDir:
        {{- with .Values.tmpDir.sizeLimit }}
        sizeLimit: {{ . }}
        {{- end }}
    - name: spec
      configMap:
        name: {{ include "preprocess.specConfigMapName" . }}
    {{- if .Values.persistence.enabled }}
    - name: data
      persistentVolumeClaim:
        claimName: {{ include "preprocess.claimName" . }}
    {{- end }}
{{- end -}}
