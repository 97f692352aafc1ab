{{/* Name of the chart, or nameOverride. */}}
{{- define "apivideo-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified name: the release name when it already holds the chart's
name, "<release>-<name>" otherwise, or fullnameOverride.
*/}}
{{- define "apivideo-exporter.fullname" -}}
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

{{- define "apivideo-exporter.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "apivideo-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "apivideo-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "apivideo-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The pod's service account: none (the namespace's default) unless set. */}}
{{- define "apivideo-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "apivideo-exporter.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Whether the exporter gets a --web.config.file. */}}
{{- define "apivideo-exporter.webConfig" -}}
{{- if or .Values.webConfig.tls.enabled .Values.webConfig.basicAuth.enabled }}true{{ end }}
{{- end }}

{{/* Where the web configuration and the TLS key pair are mounted. */}}
{{- define "apivideo-exporter.webConfigDir" -}}/etc/apivideo-exporter-web{{- end }}
{{- define "apivideo-exporter.tlsDir" -}}/etc/apivideo-exporter-tls{{- end }}

{{/* The --web.config.file of exporter-toolkit. */}}
{{- define "apivideo-exporter.webConfigFile" -}}
{{- $file := dict }}
{{- if .Values.webConfig.tls.enabled }}
{{- $_ := set $file "tls_server_config" (dict "cert_file" (printf "%s/tls.crt" (include "apivideo-exporter.tlsDir" .)) "key_file" (printf "%s/tls.key" (include "apivideo-exporter.tlsDir" .))) }}
{{- end }}
{{- if .Values.webConfig.basicAuth.enabled }}
{{- $_ := set $file "basic_auth_users" (dict .Values.webConfig.basicAuth.username .Values.webConfig.basicAuth.passwordHash) }}
{{- end }}
{{- toYaml $file }}
{{- end }}

{{/*
The scheme, tlsConfig and basicAuth with which Prometheus scrapes the
exporter, in the Prometheus Operator's spelling, for an endpoint of a
PodMonitor or ServiceMonitor or a ScrapeConfig. The scheme is upper case
for a ScrapeConfig (.upper).
*/}}
{{- define "apivideo-exporter.scrapeAuth" -}}
{{- $v := .root.Values.webConfig }}
{{- if $v.tls.enabled }}
scheme: {{ if .upper }}HTTPS{{ else }}https{{ end }}
{{- with $v.tls.monitorTLSConfig }}
tlsConfig:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
{{- if $v.basicAuth.enabled }}
basicAuth:
  username:
    name: {{ include "apivideo-exporter.fullname" .root }}-web-config
    key: username
  password:
    name: {{ $v.basicAuth.passwordSecret.name }}
    key: {{ $v.basicAuth.passwordSecret.key }}
{{- end }}
{{- end }}

{{/* Labels of a monitor or the PrometheusRule: labels and additionalLabels. */}}
{{- define "apivideo-exporter.extraLabels" -}}
{{- $l := merge (dict) (.additionalLabels | default dict) (.labels | default dict) }}
{{- with $l }}
{{- toYaml . }}
{{- end }}
{{- end }}

{{/* A kubelet probe: HTTP(S) on the metrics port, or TCP with basic auth. */}}
{{- define "apivideo-exporter.probe" -}}
{{- $probe := deepCopy .probe }}
{{- if .root.Values.webConfig.basicAuth.enabled }}
{{- $_ := unset $probe "httpGet" }}
{{- $_ := set $probe "tcpSocket" (dict "port" "apivideo") }}
{{- else if and .root.Values.webConfig.tls.enabled (hasKey $probe "httpGet") }}
{{- $_ := set $probe "httpGet" (merge (dict "scheme" "HTTPS") $probe.httpGet) }}
{{- end }}
{{- toYaml $probe }}
{{- end }}

{{- define "apivideo-exporter.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Secret holding the API key and its key. */}}
{{- define "apivideo-exporter.secretName" -}}
{{- if .Values.apiKey.value }}
{{- include "apivideo-exporter.fullname" . }}
{{- else }}
{{- required "apiKey.existingSecret or apiKey.value is required" .Values.apiKey.existingSecret }}
{{- end }}
{{- end }}

{{- define "apivideo-exporter.secretKey" -}}
{{- if .Values.apiKey.value }}api-key{{ else }}{{ .Values.apiKey.existingSecretKey }}{{ end }}
{{- end }}

{{/* One discovery path: two would scrape, and read api.video, twice. */}}
{{- define "apivideo-exporter.checkMonitors" -}}
{{- if and .Values.podMonitor.enabled .Values.serviceMonitor.enabled }}
{{- fail "podMonitor.enabled and serviceMonitor.enabled are both true: Prometheus would scrape the exporter twice and double the api.video reads; enable one" }}
{{- end }}
{{- end }}

{{/*
Whether the single-account key (apiKey) is used: always without accounts,
with them only when apiKey.withAccounts is set.
*/}}
{{- define "apivideo-exporter.singleKey" -}}
{{- if or (not .Values.accounts) .Values.apiKey.withAccounts }}true{{ end }}
{{- end }}

{{/* Where the accounts' keys are mounted: <dir>/<account>/api-key. */}}
{{- define "apivideo-exporter.accountKeysDir" -}}/etc/apivideo-accounts{{- end }}

{{/* The Secret the chart creates for an account's apiKey.value. */}}
{{- define "apivideo-exporter.accountSecretName" -}}
{{- printf "%s-account-%s" (include "apivideo-exporter.fullname" .root) (.name | replace "_" "-") }}
{{- end }}

{{/* The accounts file, with each account's key file as mounted. */}}
{{- define "apivideo-exporter.accountsFile" -}}
{{- $accounts := dict }}
{{- range $name, $a := .Values.accounts }}
{{- $account := dict "api_key_file" (printf "%s/%s/api-key" (include "apivideo-exporter.accountKeysDir" $) $name) }}
{{- with $a.url }}{{ $_ := set $account "url" . }}{{ end }}
{{- if hasKey $a "concurrency" }}{{ $_ := set $account "concurrency" (int $a.concurrency) }}{{ end }}
{{- with $a.cacheTTL }}{{ $_ := set $account "cache_ttl" . }}{{ end }}
{{- with $a.timeout }}{{ $_ := set $account "timeout" . }}{{ end }}
{{- with $a.listing }}{{ $_ := set $account "listing" . }}{{ end }}
{{- $_ := set $accounts $name $account }}
{{- end }}
{{- dict "accounts" $accounts | toYaml }}
{{- end }}

{{/*
Mistakes the schema cannot see: two discovery paths for /metrics, an
account with no key or two, a key or a ScrapeConfig with nothing to use it.
*/}}
{{- define "apivideo-exporter.checkValues" -}}
{{- include "apivideo-exporter.checkMonitors" . }}
{{- $secrets := dict }}
{{- range $name, $a := .Values.accounts }}
{{- $key := $a.apiKey | default dict }}
{{- if and $key.existingSecret $key.value }}
{{- fail (printf "accounts.%s: set one of apiKey.existingSecret and apiKey.value, not both" $name) }}
{{- end }}
{{- if not (or $key.existingSecret $key.value) }}
{{- fail (printf "accounts.%s: apiKey.existingSecret or apiKey.value is required" $name) }}
{{- end }}
{{- if $key.value }}
{{- $secret := include "apivideo-exporter.accountSecretName" (dict "root" $ "name" $name) }}
{{- if hasKey $secrets $secret }}
{{- fail (printf "accounts.%s and accounts.%s would share the Secret %s: use apiKey.existingSecret for one of them" (get $secrets $secret) $name $secret) }}
{{- end }}
{{- $_ := set $secrets $secret $name }}
{{- end }}
{{- end }}
{{- if and .Values.accounts (not .Values.apiKey.withAccounts) .Values.apiKey.value }}
{{- fail "apiKey.value is set but not used with accounts: set apiKey.withAccounts=true to also serve that account on /metrics, or remove it" }}
{{- end }}
{{- if and .Values.webConfig.tls.enabled (not .Values.webConfig.tls.secretName) }}
{{- fail "webConfig.tls.enabled needs webConfig.tls.secretName, a kubernetes.io/tls Secret" }}
{{- end }}
{{- if .Values.webConfig.basicAuth.enabled }}
{{- if not .Values.webConfig.basicAuth.passwordHash }}
{{- fail "webConfig.basicAuth.enabled needs webConfig.basicAuth.passwordHash, the bcrypt hash of the password" }}
{{- end }}
{{- if and (or .Values.podMonitor.enabled .Values.serviceMonitor.enabled .Values.scrapeConfig.enabled) (not .Values.webConfig.basicAuth.passwordSecret.name) }}
{{- fail "webConfig.basicAuth.enabled with a monitor needs webConfig.basicAuth.passwordSecret.name, the Secret of the password Prometheus sends" }}
{{- end }}
{{- end }}
{{- if and .Values.scrapeConfig.enabled (not .Values.accounts) }}
{{- fail "scrapeConfig.enabled probes the accounts, and there are none: set accounts, or use podMonitor or serviceMonitor for a single account" }}
{{- end }}
{{- end }}

{{/* Whether the chart creates a Secret for an account's key. */}}
{{- define "apivideo-exporter.accountSecrets" -}}
{{- range $name, $a := .Values.accounts }}
{{- if $a.apiKey.value }}true{{ end }}
{{- end }}
{{- end }}
