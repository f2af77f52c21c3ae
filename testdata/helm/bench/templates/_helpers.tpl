{{/* The labels of one app's objects: called with (dict "root" $ "app" $app). */}}
{{- define "bench.labels" -}}
app.kubernetes.io/name: {{ .app.name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | trunc 63 }}
{{- end }}

{{/* The selector of one app's pods. */}}
{{- define "bench.selector" -}}
app.kubernetes.io/name: {{ .app.name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end }}
