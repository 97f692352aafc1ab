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
{{- end }}

{{- define "apivideo-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "apivideo-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
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
