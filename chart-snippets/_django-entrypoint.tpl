{{/*
django-entrypoint: Helm named templates for a chart whose image is built FROM the django-entrypoint
base image. Copy this file into your chart's templates/ and merge values.yaml (next to it) into
your chart's values. The image is read from .Values.image (repository, tag, pullPolicy), as laid
out by `helm create`.

  spec.template.spec.securityContext  include "django-entrypoint.podSecurityContext"
  initContainers:                      include "django-entrypoint.initContainer"
  the app container's env:             include "django-entrypoint.appEnv"
  the app container's securityContext include "django-entrypoint.containerSecurityContext"
  the app container's volumeMounts     include "django-entrypoint.appVolumeMounts"
  spec.template.spec.volumes           include "django-entrypoint.volumes"
  a template of its own:               include "django-entrypoint.migrationJob" (job mode only)
  a template of its own:               include "django-entrypoint.secrets" (secret.create only)

migrations.mode:
  initContainer  every pod's initContainer waits, migrates under the entrypoint's lock and
                 ensures the admin; replicas started together migrate once.
  job            a pre-install/pre-upgrade hook Job does that once per release; every pod's
                 initContainer only waits until no migration is pending. The Job runs before
                 the Deployment changes, so `helm upgrade --wait` cannot deadlock on it.
*/}}

{{- define "django-entrypoint.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "django-entrypoint.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "django-entrypoint.labels" -}}
{{ include "django-entrypoint.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | default .Chart.Version | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 }}
{{- end -}}

{{/* Job pods carry no app.kubernetes.io/name: a Service selecting the app never routes to them. */}}
{{- define "django-entrypoint.migrationLabels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: {{ .Chart.Name }}
app.kubernetes.io/component: migrations
{{- end -}}

{{- define "django-entrypoint.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) -}}
{{- end -}}

{{- define "django-entrypoint.databaseSecretName" -}}
{{- .Values.djangoEntrypoint.database.secretName | default (printf "%s-database" (include "django-entrypoint.fullname" .)) -}}
{{- end -}}

{{- define "django-entrypoint.adminSecretName" -}}
{{- .Values.djangoEntrypoint.admin.secretName | default (printf "%s-admin" (include "django-entrypoint.fullname" .)) -}}
{{- end -}}

{{- define "django-entrypoint.mode" -}}
{{- $mode := .Values.djangoEntrypoint.migrations.mode -}}
{{- if not (has $mode (list "initContainer" "job")) -}}
{{- fail (printf "djangoEntrypoint.migrations.mode=%q is invalid: expected initContainer or job" $mode) -}}
{{- end -}}
{{- $mode -}}
{{- end -}}

{{/* Pod-level security defaults: the image's fixed non-root uid/gid, RuntimeDefault seccomp. */}}
{{- define "django-entrypoint.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "django-entrypoint.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* What every container of the release needs: the database URL from a Secret, never inlined. */}}
{{- define "django-entrypoint.commonEnv" -}}
{{- $v := .Values.djangoEntrypoint -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "django-entrypoint.databaseSecretName" . }}
      key: {{ $v.database.secretKey }}
{{- with $v.settingsModule }}
- name: DJANGO_SETTINGS_MODULE
  value: {{ . | quote }}
{{- end }}
- name: ENTRYPOINT_LOG_FORMAT
  value: json
- name: ENTRYPOINT_LOG_LEVEL
  value: {{ $v.logLevel | quote }}
{{- with $v.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The wait settings and the migration targets: the migrating container and, in job mode, the
     initContainer that waits until no migration towards these targets is pending. */}}
{{- define "django-entrypoint.migrateEnv" -}}
{{- $v := .Values.djangoEntrypoint -}}
- name: ENTRYPOINT_WAIT_TIMEOUT
  value: {{ $v.wait.timeout | quote }}
{{- with compact ($v.migrations.targets | default list) }}
- name: ENTRYPOINT_MIGRATE_TARGETS
  value: {{ join "," . | quote }}
{{- end }}
{{- end -}}

{{/* The container that migrates and ensures the admin: the initContainer or the Job's. */}}
{{- define "django-entrypoint.stepsEnv" -}}
{{- $v := .Values.djangoEntrypoint -}}
- name: ENTRYPOINT_STEPS
  value: {{ ternary "wait,migrate,admin" "wait,migrate" $v.admin.enabled }}
- name: ENTRYPOINT_MIGRATE_LOCK_TIMEOUT
  value: {{ $v.migrations.lockTimeout | quote }}
{{- if $v.admin.enabled }}
- name: DJANGO_ADMIN_USERNAME
  value: {{ required "djangoEntrypoint.admin.username is required when admin.enabled" $v.admin.username | quote }}
{{- with $v.admin.email }}
- name: DJANGO_ADMIN_EMAIL
  value: {{ . | quote }}
{{- end }}
- name: DJANGO_ADMIN_PASSWORD_FILE
  value: /run/secrets/django-admin/password
{{- end }}
{{- end -}}

{{/* The app container: the initContainer (or the Job) did the steps; it only execs the server. */}}
{{- define "django-entrypoint.appEnv" -}}
- name: ENTRYPOINT_STEPS
  value: none
{{ include "django-entrypoint.commonEnv" . }}
{{- end -}}

{{- define "django-entrypoint.resources" -}}
{{- toYaml .Values.djangoEntrypoint.resources -}}
{{- end -}}

{{- define "django-entrypoint.appVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- end -}}

{{- define "django-entrypoint.stepsVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.djangoEntrypoint.admin.enabled }}
- name: django-admin
  mountPath: /run/secrets/django-admin
  readOnly: true
{{- end }}
{{- end -}}

{{/* /tmp is the only writable place (read-only root filesystem); the admin password is a file. */}}
{{- define "django-entrypoint.volumes" -}}
{{- $v := .Values.djangoEntrypoint -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ $v.tmpSizeLimit }}
{{- if and $v.admin.enabled (eq (include "django-entrypoint.mode" .) "initContainer") }}
{{ include "django-entrypoint.adminVolume" . }}
{{- end }}
{{- end -}}

{{- define "django-entrypoint.adminVolume" -}}
- name: django-admin
  secret:
    secretName: {{ include "django-entrypoint.adminSecretName" . }}
    defaultMode: 0440
    items:
      - key: {{ .Values.djangoEntrypoint.admin.secretKey }}
        path: password
{{- end -}}

{{- define "django-entrypoint.initContainer" -}}
{{- $v := .Values.djangoEntrypoint -}}
{{- $mode := include "django-entrypoint.mode" . -}}
- name: django-entrypoint
  image: {{ include "django-entrypoint.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy | default "IfNotPresent" }}
  # A command and no args: the image's CMD (the server) is not run here, only the steps.
  command: ["tini", "--", "django-entrypoint"]
  env:
    {{- if eq $mode "job" }}
    - name: ENTRYPOINT_STEPS
      value: wait
    - name: ENTRYPOINT_WAIT_FOR
      value: migrations
    {{- else }}
    {{- include "django-entrypoint.stepsEnv" . | nindent 4 }}
    {{- end }}
    {{- include "django-entrypoint.migrateEnv" . | nindent 4 }}
    {{- include "django-entrypoint.commonEnv" . | nindent 4 }}
  securityContext:
    {{- include "django-entrypoint.containerSecurityContext" . | nindent 4 }}
  resources:
    {{- include "django-entrypoint.resources" . | nindent 4 }}
  volumeMounts:
    {{- if eq $mode "job" }}
    {{- include "django-entrypoint.appVolumeMounts" . | nindent 4 }}
    {{- else }}
    {{- include "django-entrypoint.stepsVolumeMounts" . | nindent 4 }}
    {{- end }}
{{- end -}}

{{- define "django-entrypoint.migrationJob" -}}
{{- $v := .Values.djangoEntrypoint -}}
{{- if eq (include "django-entrypoint.mode" .) "job" }}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ include "django-entrypoint.fullname" . | trunc 55 | trimSuffix "-" }}-migrate
  labels:
    {{- include "django-entrypoint.migrationLabels" . | nindent 4 }}
    app.kubernetes.io/managed-by: {{ .Release.Service }}
  annotations:
    # Runs, and must succeed, before the release's other resources are installed or upgraded.
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "0"
    helm.sh/hook-delete-policy: before-hook-creation
spec:
  backoffLimit: {{ $v.migrations.job.backoffLimit }}
  activeDeadlineSeconds: {{ $v.migrations.job.activeDeadlineSeconds }}
  template:
    metadata:
      labels:
        {{- include "django-entrypoint.migrationLabels" . | nindent 8 }}
    spec:
      restartPolicy: Never
      automountServiceAccountToken: false
      securityContext:
        {{- include "django-entrypoint.podSecurityContext" . | nindent 8 }}
      containers:
        - name: migrate
          image: {{ include "django-entrypoint.image" . }}
          imagePullPolicy: {{ .Values.image.pullPolicy | default "IfNotPresent" }}
          command: ["tini", "--", "django-entrypoint"]
          env:
            {{- include "django-entrypoint.stepsEnv" . | nindent 12 }}
            {{- include "django-entrypoint.migrateEnv" . | nindent 12 }}
            {{- include "django-entrypoint.commonEnv" . | nindent 12 }}
          securityContext:
            {{- include "django-entrypoint.containerSecurityContext" . | nindent 12 }}
          resources:
            {{- include "django-entrypoint.resources" . | nindent 12 }}
          volumeMounts:
            {{- include "django-entrypoint.stepsVolumeMounts" . | nindent 12 }}
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: {{ $v.tmpSizeLimit }}
        {{- if $v.admin.enabled }}
        {{- include "django-entrypoint.adminVolume" . | nindent 8 }}
        {{- end }}
{{- end }}
{{- end -}}

{{/* Secrets made from values: for development. In job mode they are hooks too (weight -10), or
     the pre-install Job would start before they exist. */}}
{{- define "django-entrypoint.secrets" -}}
{{- $v := .Values.djangoEntrypoint -}}
{{- if $v.secret.create }}
{{- $hook := eq (include "django-entrypoint.mode" .) "job" }}
apiVersion: v1
kind: Secret
metadata:
  name: {{ include "django-entrypoint.databaseSecretName" . }}
  labels:
    {{- include "django-entrypoint.labels" . | nindent 4 }}
  {{- if $hook }}
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "-10"
    helm.sh/hook-delete-policy: before-hook-creation
  {{- end }}
type: Opaque
stringData:
  {{ $v.database.secretKey }}: {{ required "djangoEntrypoint.secret.databaseUrl is required when secret.create is true" $v.secret.databaseUrl | quote }}
{{- if $v.admin.enabled }}
---
apiVersion: v1
kind: Secret
metadata:
  name: {{ include "django-entrypoint.adminSecretName" . }}
  labels:
    {{- include "django-entrypoint.labels" . | nindent 4 }}
  {{- if $hook }}
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "-10"
    helm.sh/hook-delete-policy: before-hook-creation
  {{- end }}
type: Opaque
stringData:
  {{ $v.admin.secretKey }}: {{ required "djangoEntrypoint.secret.adminPassword is required when secret.create is true" $v.secret.adminPassword | quote }}
{{- end }}
{{- end }}
{{- end -}}
