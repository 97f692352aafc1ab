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
