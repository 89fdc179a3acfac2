{{/* Names, labels and the pieces every pod of the release shares. */}}

{{- define "sluice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sluice.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "sluice.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sluice.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name: the ServiceAccount to run as, when the chart creates none" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The labels of everything; "sluice.selectorLabels" with a component picks one workload. */}}
{{- define "sluice.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* (dict "root" $ "component" "web") */}}
{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sluice.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "sluice.componentLabels" -}}
{{ include "sluice.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "sluice.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* DJANGO_ALLOWED_HOSTS: the hosts given, the ingress's, and the probes' Host header. */}}
{{- define "sluice.allowedHosts" -}}
{{- $hosts := concat .Values.allowedHosts (list .Values.probes.host) }}
{{- if .Values.ingress.enabled }}
{{- $hosts = concat $hosts .Values.ingress.hosts }}
{{- end }}
{{- join "," (uniq $hosts) }}
{{- end }}

{{/* The pod-level settings every pod shares: (dict "root" $ "automountToken" bool "values" .Values.web) */}}
{{- define "sluice.podSpec" -}}
serviceAccountName: {{ include "sluice.serviceAccountName" .root }}
automountServiceAccountToken: {{ .automountToken }}
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* What a container of the image shares: image, configuration, security and scratch space. */}}
{{- define "sluice.containerBasics" -}}
image: {{ include "sluice.image" . }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
envFrom:
  - configMapRef:
      name: {{ include "sluice.fullname" . }}
  - secretRef:
      name: {{ required "existingSecret: the Secret holding DATABASE_URL, REDIS_URL, DJANGO_SECRET_KEY and SLUICE_SECRETS_KEYS" .Values.existingSecret }}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
{{- end }}

{{- define "sluice.scratchMounts" -}}
- name: tmp
  mountPath: /tmp
- name: data
  mountPath: /var/lib/sluice
{{- end }}

{{- define "sluice.scratchVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.scratch.sizeLimit }}
- name: data
  emptyDir:
    sizeLimit: {{ .Values.scratch.sizeLimit }}
{{- end }}

{{/* Waits until the database has every migration of this image (the migrations Job of the
same revision applies them): `manage.py migrate --check` fails while one is missing. */}}
{{- define "sluice.waitForMigrations" -}}
- name: wait-for-migrations
  {{- include "sluice.containerBasics" . | nindent 2 }}
  command:
    - sh
    - -c
    - until python manage.py migrate --check >/dev/null; do echo "waiting for the database's migrations"; sleep {{ .Values.waitForMigrations.intervalSeconds }}; done
  resources:
    requests: {cpu: 50m, memory: 192Mi}
    limits: {memory: 384Mi}
  volumeMounts:
    {{- include "sluice.scratchMounts" . | nindent 4 }}
{{- end }}

{{/* A Celery container's heartbeat: the variables that make it touch its file, and the exec
probes that read it. (dict "root" $ "variable" "SLUICE_CELERY_WORKER_HEARTBEAT_FILE" "file" "/tmp/…") */}}
{{- define "sluice.heartbeatEnv" -}}
- name: {{ .variable }}
  value: {{ .file | quote }}
- name: SLUICE_CELERY_HEARTBEAT_INTERVAL
  value: {{ .root.Values.probes.heartbeat.intervalSeconds | quote }}
{{- end }}

{{- define "sluice.heartbeatProbes" -}}
{{- $heartbeat := .root.Values.probes.heartbeat }}
{{- if lt (int $heartbeat.maxAgeSeconds) (mul 2 (int $heartbeat.intervalSeconds)) }}
{{- fail "probes.heartbeat: maxAgeSeconds must be at least twice intervalSeconds, or a live process would be restarted" }}
{{- end }}
{{- $check := dict "command" (list "python" "-m" "foundation.heartbeat" .file "--max-age" (toString (int $heartbeat.maxAgeSeconds))) -}}
startupProbe:
  exec:
    {{- toYaml $check | nindent 4 }}
  {{- toYaml $heartbeat.startup | nindent 2 }}
livenessProbe:
  exec:
    {{- toYaml $check | nindent 4 }}
  {{- toYaml $heartbeat.liveness | nindent 2 }}
{{- end }}

{{/* Rolls the pods when the configuration changes. */}}
{{- define "sluice.configChecksum" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- end }}

{{/* The worker groups with the worker-level defaults filled in (a group's own key replaces the
default's whole value), checked: names are DNS labels, queues are Sluice's, and every queue
has a consumer. */}}
{{- define "sluice.workerGroups" -}}
{{- $groups := list }}
{{- $consumed := list }}
{{- $names := list }}
{{- range $g := .Values.worker.groups }}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$" (toString $g.name)) }}
{{- fail (printf "worker.groups: %q is not a short DNS label (lower case letters, digits, '-')" (toString $g.name)) }}
{{- end }}
{{- if has $g.name $names }}
{{- fail (printf "worker.groups: %q is named twice" $g.name) }}
{{- end }}
{{- $names = append $names $g.name }}
{{- if not $g.queues }}
{{- fail (printf "worker.groups: %q consumes no queue" $g.name) }}
{{- end }}
{{- range $g.queues }}
{{- if not (has . $.Values.queues) }}
{{- fail (printf "worker.groups: %q is not a queue of Sluice (%s)" . (join ", " $.Values.queues)) }}
{{- end }}
{{- end }}
{{- $consumed = concat $consumed $g.queues }}
{{- $group := dict "name" $g.name "queues" $g.queues "replicas" (hasKey $g "replicas" | ternary $g.replicas 1) }}
{{- range $key := list "concurrency" "resources" "autoscaling" "podDisruptionBudget" "podAnnotations" "nodeSelector" "tolerations" "affinity" }}
{{- $_ := set $group $key (hasKey $g $key | ternary (get $g $key) (get $.Values.worker $key)) }}
{{- end }}
{{- $groups = append $groups $group }}
{{- end }}
{{- range .Values.queues }}
{{- if not (has . $consumed) }}
{{- fail (printf "worker.groups: no group consumes the queue %q, whose tasks would never run" .) }}
{{- end }}
{{- end }}
{{- toJson $groups }}
{{- end }}
