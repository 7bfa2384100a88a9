{{/* The batch jobs (preprocess, train): one pod template for the Job and the CronJob.
     Call with (dict "context" . "env" ENV "volumeMounts" MOUNTS "volumes" VOLUMES
     "initContainers" INIT): the chart's own list items, as strings ("" for none). */}}

{{- define "common.batch.podTemplate" -}}
{{- $ctx := .context -}}
{{- $v := $ctx.Values -}}
metadata:
  {{- include "common.pod.metadata" $ctx | nindent 2 }}
spec:
  restartPolicy: Never
  {{- include "common.pod.serviceAccount" $ctx | nindent 2 }}
  {{- include "common.pod.scheduling" $ctx | nindent 2 }}
  {{- if or .initContainers $v.initContainers }}
  initContainers:
    {{- with .initContainers }}{{ . | trim | nindent 4 }}{{ end }}
    {{- include "common.list" (list $v.initContainers 4) }}
  {{- end }}
  containers:
    - name: {{ $ctx.Chart.Name }}
      {{- include "common.container.image" $ctx | nindent 6 }}
      {{- with $v.extraArgs }}
      args:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      env:
        {{- .env | trim | nindent 8 }}
        {{- if $v.dask.enabled }}
        - name: DASK_SCHEDULER_ADDRESS
          value: {{ required "dask.schedulerAddress is required when dask.enabled" $v.dask.schedulerAddress | quote }}
        {{- else if $v.dask.dashboardPort }}
        - name: DASK_DASHBOARD_ADDRESS
          value: {{ printf ":%d" (int $v.dask.dashboardPort) | quote }}
        {{- end }}
        {{- include "common.container.env" $ctx | nindent 8 }}
      {{- if and (not $v.dask.enabled) $v.dask.dashboardPort }}
      ports:
        - name: dask-dashboard
          containerPort: {{ int $v.dask.dashboardPort }}
      {{- end }}
      {{- include "common.container.envFrom" $ctx | nindent 6 }}
      {{- with $v.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- with .volumeMounts }}
        {{- . | trim | nindent 8 }}
        {{- end }}
        {{- if $v.persistence.enabled }}
        - name: data
          mountPath: {{ $v.persistence.mountPath }}
        {{- end }}
        {{- include "common.list" (list $v.extraVolumeMounts 8) }}
    {{- include "common.list" (list $v.sidecars 4) }}
  volumes:
    {{- include "common.volume.tmp" $ctx | nindent 4 }}
    {{- with .volumes }}
    {{- . | trim | nindent 4 }}
    {{- end }}
    {{- if $v.persistence.enabled }}
    - name: data
      persistentVolumeClaim:
        claimName: {{ include "common.claimName" (dict "context" $ctx "suffix" "data") }}
    {{- end }}
    {{- include "common.list" (list $v.extraVolumes 4) }}
{{- end -}}

{{/* The Job is named after the release revision: a Job's pod template is immutable, so every
     `helm upgrade --install` creates (and runs) a new Job and removes the old one. */}}
{{- define "common.batch.jobName" -}}
{{- printf "%s-%d" (include "common.names.fullname" . | trunc 55 | trimSuffix "-") (int .Release.Revision) -}}
{{- end -}}

{{- define "common.batch.cronJobName" -}}
{{- include "common.names.fullname" . | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{/* Call with (dict "context" . "failJobOnExitCodes" LIST): exit codes a retry cannot mend
     fail the Job at once (podFailurePolicy; the pod's container is named after the chart). */}}
{{- define "common.batch.jobSpec" -}}
{{- $ctx := .context -}}
backoffLimit: {{ $ctx.Values.job.backoffLimit }}
{{- with .failJobOnExitCodes }}
podFailurePolicy:
  rules:
    - action: FailJob
      onExitCodes:
        containerName: {{ $ctx.Chart.Name }}
        operator: In
        values: {{ toJson . }}
{{- end }}
{{- with $ctx.Values.job.activeDeadlineSeconds }}
activeDeadlineSeconds: {{ . }}
{{- end }}
{{- with $ctx.Values.job.ttlSecondsAfterFinished }}
ttlSecondsAfterFinished: {{ . }}
{{- end }}
{{- end -}}

{{- /* The metadata of a Job or CronJob: "name", the release namespace, the standard labels
and the chart's commonAnnotations of "context". */ -}}
{{- define "common.batch.metadata" -}}
name: {{ .name }}
namespace: {{ .context.Release.Namespace | quote }}
labels:
  {{- include "common.labels.standard" .context | nindent 2 }}
{{- with .context.Values.commonAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Call with (dict "context" . "podTemplate" TEMPLATE ["failJobOnExitCodes" LIST]), as
     common.batch.cronJob. */}}
{{- define "common.batch.job" -}}
{{- $ctx := .context -}}
{{- if $ctx.Values.job.enabled }}
apiVersion: batch/v1
kind: Job
metadata:
  {{- include "common.batch.metadata" (dict "context" $ctx "name" (include "common.batch.jobName" $ctx)) | nindent 2 }}
spec:
  {{- include "common.batch.jobSpec" (dict "context" $ctx "failJobOnExitCodes" .failJobOnExitCodes) | nindent 2 }}
  template:
    {{- .podTemplate | nindent 4 }}
{{- end }}
{{- end -}}

{{- define "common.batch.cronJob" -}}
{{- $ctx := .context -}}
{{- $c := $ctx.Values.cronjob -}}
{{- if $c.enabled }}
apiVersion: batch/v1
kind: CronJob
metadata:
  {{- include "common.batch.metadata" (dict "context" $ctx "name" (include "common.batch.cronJobName" $ctx)) | nindent 2 }}
spec:
  schedule: {{ $c.schedule | quote }}
  {{- with $c.timeZone }}
  timeZone: {{ . | quote }}
  {{- end }}
  concurrencyPolicy: {{ $c.concurrencyPolicy }}
  suspend: {{ $c.suspend }}
  successfulJobsHistoryLimit: {{ $c.successfulJobsHistoryLimit }}
  failedJobsHistoryLimit: {{ $c.failedJobsHistoryLimit }}
  jobTemplate:
    metadata:
      labels:
        {{- include "common.labels.standard" $ctx | nindent 8 }}
    spec:
      {{- include "common.batch.jobSpec" (dict "context" $ctx "failJobOnExitCodes" .failJobOnExitCodes) | nindent 6 }}
      template:
        {{- .podTemplate | nindent 8 }}
{{- end }}
{{- end -}}

{{/* NOTES.txt lines for the Job and the CronJob. */}}
{{- define "common.batch.notes" -}}
{{- if .Values.job.enabled }}

  kubectl -n {{ .Release.Namespace }} logs -f job/{{ include "common.batch.jobName" . }}
{{- if and (not .Values.dask.enabled) .Values.dask.dashboardPort }}

The Dask dashboard of the running job (its tasks, progress and memory):

  kubectl -n {{ .Release.Namespace }} port-forward job/{{ include "common.batch.jobName" . }} {{ .Values.dask.dashboardPort }}
  open http://127.0.0.1:{{ .Values.dask.dashboardPort }}/status
{{- end }}
{{- end }}
{{- if .Values.cronjob.enabled }}

CronJob {{ include "common.batch.cronJobName" . }} runs on schedule "{{ .Values.cronjob.schedule }}".
{{- end }}
{{- end -}}
