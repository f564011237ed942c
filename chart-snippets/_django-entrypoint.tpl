{{/*
django-entrypoint: Helm named templates for a chart whose image is built FROM the django-entrypoint
base image. Copy this file into your chart's templates/ and merge values.yaml (next to it) into
your chart's values. The image is read from .Values.image (repository, tag, pullPolicy), as laid
out by `helm create`.

  spec.template.spec                   include "django-entrypoint.podDefaults"
                                       (automountServiceAccountToken: false, the securityContext)
  initContainers:                      include "django-entrypoint.initContainer"
                                       (the sidecars first, then the entrypoint's)
  initContainers of a pod whose        include "django-entrypoint.sidecars"
  container runs the steps itself      (with `with`: nothing when sidecars is empty)
  the app container's env:             include "django-entrypoint.appEnv"
  the app container's securityContext  include "django-entrypoint.containerSecurityContext"
  the app container's volumeMounts     include "django-entrypoint.appVolumeMounts"
  the app container's startupProbe     include "django-entrypoint.startupProbe"
                                       ((dict "root" . "steps" true) when it runs the steps)
  spec.template.spec.volumes           include "django-entrypoint.volumes"
  a template of its own:               include "django-entrypoint.migrationJob" (job, revisionJob)
  a template of its own:               include "django-entrypoint.secrets" (secret.create only)

migrations.mode (values.yaml and docs/image.md say which to pick when):
  initContainer  every pod's initContainer waits, migrates under the entrypoint's lock and
                 ensures the admin; replicas started together migrate once.
  job            a pre-install/pre-upgrade hook Job does that once per release; every pod's
                 initContainer only waits until no migration is pending. The Job runs before
                 the Deployment changes, so `helm upgrade --wait` cannot deadlock on it.
                 phases: true splits it: the hook Job applies the pre phase, pods wait for that
                 phase only, a post-install/post-upgrade hook Job applies the rest.
  revisionJob    a plain Job of the release, named per revision, migrates while every pod's
                 initContainer waits for it: no hook (Argo CD, a database of the same release).
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
{{- if not (has $mode (list "initContainer" "job" "revisionJob")) -}}
{{- fail (printf "djangoEntrypoint.migrations.mode=%q is invalid: expected initContainer, job or revisionJob" $mode) -}}
{{- end -}}
{{- if and .Values.djangoEntrypoint.migrations.phases (ne $mode "job") -}}
{{- fail (printf "djangoEntrypoint.migrations.phases=true needs migrations.mode=job, not %s: the post phase is a post-install/post-upgrade hook Job" $mode) -}}
{{- end -}}
{{- $mode -}}
{{- end -}}

{{/* "true" when the job mode runs the two deploy phases (django-safemigrate), else empty. */}}
{{- define "django-entrypoint.phases" -}}
{{- if and (eq (include "django-entrypoint.mode" .) "job") .Values.djangoEntrypoint.migrations.phases -}}
true
{{- end -}}
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

{{/* Pod-level settings of every pod here: no service-account token (neither the steps nor a
     Django app need the Kubernetes API) and the securityContext above. */}}
{{- define "django-entrypoint.podDefaults" -}}
automountServiceAccountToken: false
securityContext:
  {{- include "django-entrypoint.podSecurityContext" . | nindent 2 }}
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

{{/* The wait settings, the migration targets and the schema check: the migrating container and,
     in job mode, the initContainer that waits until no migration towards these targets is
     pending; each then checks that the live schema serves its code. */}}
{{- define "django-entrypoint.migrateEnv" -}}
{{- $v := .Values.djangoEntrypoint -}}
- name: ENTRYPOINT_WAIT_TIMEOUT
  value: {{ $v.wait.timeout | quote }}
{{- with compact ($v.migrations.targets | default list) }}
- name: ENTRYPOINT_MIGRATE_TARGETS
  value: {{ join "," . | quote }}
{{- end }}
- name: ENTRYPOINT_SCHEMA_CHECK
  value: {{ $v.schemaCheck | default "warn" | quote }}
{{- end -}}

{{/* The container that migrates: the initContainer or a Job's. .root: the chart's context;
     .admin: it also ensures the admin and runs the manage and hooks steps (no-ops unless
     ENTRYPOINT_MANAGE or a hook is configured); .phase: pre, post or empty (everything). */}}
{{- define "django-entrypoint.stepsEnv" -}}
{{- $v := .root.Values.djangoEntrypoint -}}
- name: ENTRYPOINT_STEPS
  value: {{ ternary "wait,migrate,admin,manage,hooks" "wait,migrate" .admin }}
- name: ENTRYPOINT_MIGRATE_LOCK_TIMEOUT
  value: {{ $v.migrations.lockTimeout | quote }}
{{- if not (kindIs "invalid" $v.migrations.maxBlockingRows) }}
{{- /* 0 is a gate too (no blocking scan of any table with rows); int64: no 1e+06 */}}
- name: ENTRYPOINT_MIGRATE_MAX_BLOCKING_ROWS
  value: {{ int64 $v.migrations.maxBlockingRows | toString | quote }}
{{- end }}
{{- with .phase }}
- name: ENTRYPOINT_MIGRATE_PHASE
  value: {{ . }}
{{- end }}
{{- if .admin }}
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

{{/* The app container's startupProbe. Kubernetes probes no initContainer and no Job, so in the
     modes above only the server's own start counts (startupProbe.serverSeconds): include it
     with `.`. A container that runs the steps itself (an image FROM the base image, started
     with no initContainer) is probed while it waits for the database, queues on the migration
     lock and migrates: include it with (dict "root" . "steps" true) and the budget,
     failureThreshold x periodSeconds, also covers wait.timeout + migrations.lockTimeout +
     startupProbe.migrationSeconds. Too small a budget and the kubelet kills it mid-migration. */}}
{{- define "django-entrypoint.startupProbe" -}}
{{- $root := . -}}
{{- $steps := false -}}
{{- if hasKey . "root" -}}
{{- $root = .root -}}
{{- $steps = get . "steps" -}}
{{- end -}}
{{- $v := $root.Values.djangoEntrypoint -}}
{{- $p := $v.startupProbe -}}
{{- $period := int $p.periodSeconds -}}
{{- if lt $period 1 -}}
{{- fail (printf "djangoEntrypoint.startupProbe.periodSeconds=%v is invalid: expected a whole number of seconds, at least 1" $p.periodSeconds) -}}
{{- end -}}
{{- $budget := int $p.serverSeconds -}}
{{- if $steps -}}
{{- $budget = add $budget (int $v.wait.timeout) (int $v.migrations.lockTimeout) (int $p.migrationSeconds) -}}
{{- end -}}
{{- if $p.path }}
httpGet:
  path: {{ $p.path | quote }}
  port: {{ $p.port }}
  {{- with $p.host }}
  httpHeaders:
    - name: Host
      value: {{ . | quote }}
  {{- end }}
{{- else }}
tcpSocket:
  port: {{ $p.port }}
{{- end }}
periodSeconds: {{ $period }}
failureThreshold: {{ max 1 (div (add $budget $period -1) $period) }}
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

{{/* djangoEntrypoint.sidecars as native sidecars: initContainers with restartPolicy: Always
     (Kubernetes 1.29+), placed before the steps' container. Each starts before the next
     initContainer (after its startupProbe passes, if it has one), runs beside the app, and is
     stopped once a Job's container has finished, so the Job completes. */}}
{{- define "django-entrypoint.sidecars" -}}
{{- $sidecars := list -}}
{{- range $index, $sidecar := .Values.djangoEntrypoint.sidecars -}}
{{- $policy := get $sidecar "restartPolicy" | default "Always" -}}
{{- if ne $policy "Always" -}}
{{- fail (printf "djangoEntrypoint.sidecars[%d] has restartPolicy=%s: a sidecar runs until the pod's containers end, so it is Always; remove the field (the template sets it)" $index $policy) -}}
{{- end -}}
{{- $sidecars = append $sidecars (merge (dict "restartPolicy" "Always") $sidecar) -}}
{{- end -}}
{{- with $sidecars }}{{ toYaml . }}{{ end -}}
{{- end -}}

{{- define "django-entrypoint.initContainer" -}}
{{- $v := .Values.djangoEntrypoint -}}
{{- $migrates := eq (include "django-entrypoint.mode" .) "initContainer" -}}
{{- with include "django-entrypoint.sidecars" . }}{{ . }}{{ "\n" }}{{ end -}}
- name: django-entrypoint
  image: {{ include "django-entrypoint.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy | default "IfNotPresent" }}
  # A command and no args: the image's CMD (the server) is not run here, only the steps.
  command: ["tini", "--", "django-entrypoint"]
  env:
    {{- if $migrates }}
    {{- include "django-entrypoint.stepsEnv" (dict "root" . "admin" $v.admin.enabled "phase" "") | nindent 4 }}
    {{- else }}
    - name: ENTRYPOINT_STEPS
      value: wait
    - name: ENTRYPOINT_WAIT_FOR
      value: migrations
    {{- if include "django-entrypoint.phases" . }}
    # Only for the pre phase: the post phase runs once these pods are ready (helm --wait).
    - name: ENTRYPOINT_MIGRATE_PHASE
      value: pre
    {{- end }}
    {{- end }}
    {{- include "django-entrypoint.migrateEnv" . | nindent 4 }}
    {{- include "django-entrypoint.commonEnv" . | nindent 4 }}
    {{- if $migrates }}
    {{- with $v.migrateExtraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    {{- end }}
  securityContext:
    {{- include "django-entrypoint.containerSecurityContext" . | nindent 4 }}
  resources:
    {{- include "django-entrypoint.resources" . | nindent 4 }}
  volumeMounts:
    {{- if $migrates }}
    {{- include "django-entrypoint.stepsVolumeMounts" . | nindent 4 }}
    {{- else }}
    {{- include "django-entrypoint.appVolumeMounts" . | nindent 4 }}
    {{- end }}
{{- end -}}

{{/* The Jobs of the job and revisionJob modes; nothing in initContainer mode. */}}
{{- define "django-entrypoint.migrationJob" -}}
{{- $mode := include "django-entrypoint.mode" . -}}
{{- $fullname := include "django-entrypoint.fullname" . -}}
{{- if eq $mode "job" }}
{{- $phases := include "django-entrypoint.phases" . }}
{{- $pre := dict "root" . "phase" (ternary "pre" "" (eq $phases "true")) "hook" "pre-install,pre-upgrade" }}
{{- $_ := set $pre "name" (printf "%s-migrate" ($fullname | trunc 55 | trimSuffix "-")) }}
{{ include "django-entrypoint.job" $pre }}
{{- if $phases }}
---
{{- $post := dict "root" . "phase" "post" "hook" "post-install,post-upgrade" }}
{{- $_ := set $post "name" (printf "%s-migrate-post" ($fullname | trunc 50 | trimSuffix "-")) }}
{{ include "django-entrypoint.job" $post }}
{{- end }}
{{- else if eq $mode "revisionJob" }}
{{- /* A Job's pod template cannot change: each revision gets a Job of its own. Argo CD renders
       every revision as 1, so the name also carries a hash of the Job's spec. */}}
{{- $job := dict "root" . "phase" "" "hook" "" }}
{{- $hash := include "django-entrypoint.jobSpec" $job | sha256sum | trunc 8 }}
{{- $suffix := printf "-migrate-%d-%s" (int .Release.Revision) $hash }}
{{- $prefix := $fullname | trunc (sub 63 (len $suffix) | int) | trimSuffix "-" }}
{{- $_ := set $job "name" (printf "%s%s" $prefix $suffix) }}
{{ include "django-entrypoint.job" $job }}
{{- end }}
{{- end -}}

{{/* One migration Job. .root: the chart's context; .name; .phase: pre, post or empty
     (everything); .hook: its helm.sh/hook events, empty for a plain Job of the release. */}}
{{- define "django-entrypoint.job" -}}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .name }}
  labels:
    {{- include "django-entrypoint.migrationLabels" .root | nindent 4 }}
    app.kubernetes.io/managed-by: {{ .root.Release.Service }}
  {{- with .hook }}
  annotations:
    helm.sh/hook: {{ . }}
    helm.sh/hook-weight: "0"
    # Kept when it fails (its logs), replaced at the next release; ttlSecondsAfterFinished
    # removes it, helm uninstall does not (hooks are not resources of the release).
    helm.sh/hook-delete-policy: before-hook-creation
  {{- end }}
spec:
  {{- include "django-entrypoint.jobSpec" . | nindent 2 }}
{{- end -}}

{{- define "django-entrypoint.jobSpec" -}}
{{- $root := .root -}}
{{- $v := $root.Values.djangoEntrypoint -}}
{{- $admin := and $v.admin.enabled (ne .phase "post") -}}
{{- $ttl := $v.migrations.job.ttlSecondsAfterFinished -}}
backoffLimit: {{ $v.migrations.job.backoffLimit }}
activeDeadlineSeconds: {{ $v.migrations.job.activeDeadlineSeconds }}
{{- /* The first rule that matches a failed pod decides; other failures count against
       backoffLimit (69 and 75: a database not ready yet or a lock held, worth a retry). */}}
podFailurePolicy:
  rules:
    # Evicted, preempted, its node drained: not the migration's failure, not counted.
    - action: Ignore
      onPodConditions:
        - type: DisruptionTarget
          status: "True"   # the API schema requires it before 1.35
    # 78: a configuration error, or a plan refused before anything changed; the same on
    # every retry, so the Job fails at once.
    - action: FailJob
      onExitCodes:
        containerName: migrate
        operator: In
        values: [78]
{{- /* Hook Jobs only: a plain Job goes with its revision, and Argo CD would run it again if a
       TTL deleted it. */}}
{{- if and .hook (not (kindIs "invalid" $ttl)) }}
ttlSecondsAfterFinished: {{ $ttl }}
{{- end }}
template:
  metadata:
    labels:
      {{- include "django-entrypoint.migrationLabels" $root | nindent 6 }}
    {{- with $v.migrations.job.podAnnotations }}
    annotations:
      {{- toYaml . | nindent 6 }}
    {{- end }}
  spec:
    # podFailurePolicy needs Never: each failure is a new pod, seen and judged by the Job.
    restartPolicy: Never
    {{- include "django-entrypoint.podDefaults" $root | nindent 4 }}
    {{- with $v.migrations.job.serviceAccountName }}
    serviceAccountName: {{ . }}
    {{- end }}
    {{- with include "django-entrypoint.sidecars" $root }}
    initContainers:
      {{- . | nindent 6 }}
    {{- end }}
    containers:
      - name: migrate
        image: {{ include "django-entrypoint.image" $root }}
        imagePullPolicy: {{ $root.Values.image.pullPolicy | default "IfNotPresent" }}
        command: ["tini", "--", "django-entrypoint"]
        env:
          {{- include "django-entrypoint.stepsEnv" (dict "root" $root "admin" $admin "phase" .phase) | nindent 10 }}
          {{- include "django-entrypoint.migrateEnv" $root | nindent 10 }}
          {{- include "django-entrypoint.commonEnv" $root | nindent 10 }}
          {{- with $v.migrateExtraEnv }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
        securityContext:
          {{- include "django-entrypoint.containerSecurityContext" $root | nindent 10 }}
        resources:
          {{- include "django-entrypoint.resources" $root | nindent 10 }}
        volumeMounts:
          {{- if $admin }}
          {{- include "django-entrypoint.stepsVolumeMounts" $root | nindent 10 }}
          {{- else }}
          {{- include "django-entrypoint.appVolumeMounts" $root | nindent 10 }}
          {{- end }}
    volumes:
      - name: tmp
        emptyDir:
          sizeLimit: {{ $v.tmpSizeLimit }}
      {{- if $admin }}
      {{- include "django-entrypoint.adminVolume" $root | nindent 6 }}
      {{- end }}
{{- end -}}

{{/* Secrets made from values: for development. In job mode they are hooks too (weight -10), or
     the pre-install Job would start before they exist. The pods (and a post Job) read them
     after the hooks, so no hook-succeeded: helm uninstall leaves them behind (see docs/image.md). */}}
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
