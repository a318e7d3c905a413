{{/* The chart's short name. */}}
{{- define "ikegate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object name. A release named like the chart (the usual
`helm install ikegate ...`) gives "ikegate", the names config/default uses.
*/}}
{{- define "ikegate.fullname" -}}
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

{{- define "ikegate.managerName" -}}
{{- printf "%s-manager" (include "ikegate.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ikegate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object the chart renders. */}}
{{- define "ikegate.labels" -}}
app.kubernetes.io/name: {{ include "ikegate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{ include "ikegate.metaLabels" . }}
{{- end }}

{{/* The labels above less those that select. */}}
{{- define "ikegate.metaLabels" -}}
helm.sh/chart: {{ include "ikegate.chart" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ikegate
{{- end }}

{{/* Labels that select the manager's pods; they never change across upgrades. */}}
{{- define "ikegate.managerSelectorLabels" -}}
app.kubernetes.io/name: {{ include "ikegate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: manager
{{- end }}

{{- define "ikegate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ikegate.managerName" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
An image reference from {repository, tag, digest}: the digest wins, the tag
defaults to the chart's appVersion. Call with (list $ .Values.image.manager).
*/}}
{{- define "ikegate.image" -}}
{{- $root := index . 0 }}
{{- $img := index . 1 }}
{{- if $img.digest }}
{{- printf "%s@%s" $img.repository $img.digest }}
{{- else }}
{{- printf "%s:%s" $img.repository (default $root.Chart.AppVersion $img.tag) }}
{{- end }}
{{- end }}

{{/* A map as sorted key=value pairs joined by commas, as the manager's map flags take it. */}}
{{- define "ikegate.keyValues" -}}
{{- $pairs := list }}
{{- range $k, $v := . }}
{{- $pairs = append $pairs (printf "%s=%s" $k $v) }}
{{- end }}
{{- join "," $pairs }}
{{- end }}
