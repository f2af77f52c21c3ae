{{/* Names and labels of the edgecd-spoke chart. */}}

{{- define "edgecd-spoke.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "edgecd-spoke.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "edgecd-spoke.labels" -}}
app.kubernetes.io/name: {{ include "edgecd-spoke.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "edgecd-spoke.selectorLabels" -}}
app.kubernetes.io/name: {{ include "edgecd-spoke.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "edgecd-spoke.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "edgecd-spoke.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "edgecd-spoke.stateNamespace" -}}
{{- default .Release.Namespace .Values.stateNamespace -}}
{{- end -}}
