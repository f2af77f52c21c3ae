{{/* Names, labels and checks of the edgecd-hub chart. */}}

{{- define "edgecd-hub.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "edgecd-hub.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 58 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 58 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "edgecd-hub.labels" -}}
app.kubernetes.io/name: {{ include "edgecd-hub.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "edgecd-hub.selectorLabels" -}}
app.kubernetes.io/name: {{ include "edgecd-hub.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "edgecd-hub.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "edgecd-hub.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "edgecd-hub.grpcService" -}}
{{- printf "%s-grpc" (include "edgecd-hub.fullname" .) -}}
{{- end -}}

{{- define "edgecd-hub.httpService" -}}
{{- printf "%s-http" (include "edgecd-hub.fullname" .) -}}
{{- end -}}

{{- define "edgecd-hub.postgres" -}}
{{- if eq .Values.database.type "postgres" }}true{{ end -}}
{{- end -}}

{{/*
The serving certificate's names (EDGECD_HUB_TLS_NAMES): the gRPC Service as it is dialled inside the cluster,
localhost for a port-forward, tls.names, and with PostgreSQL the pod's own IP, which Kubernetes substitutes for
$(EDGECD_HUB_PEER_HOST) (defined before it in the container's env): peers relay live calls to that address and
verify it against the hub CA.
*/}}
{{- define "edgecd-hub.tlsNames" -}}
{{- $svc := include "edgecd-hub.grpcService" . -}}
{{- $ns := .Release.Namespace -}}
{{- $names := list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.%s" $svc $ns .Values.clusterDomain) "localhost" "127.0.0.1" -}}
{{- $names = concat $names .Values.tls.names -}}
{{- if include "edgecd-hub.postgres" . -}}
{{- $names = append $names "$(EDGECD_HUB_PEER_HOST)" -}}
{{- end -}}
{{- join "," (uniq $names) -}}
{{- end -}}

{{/* Refusals of combinations the schema cannot express. */}}
{{- define "edgecd-hub.validate" -}}
{{- if eq .Values.database.type "sqlite" -}}
{{- if gt (int .Values.replicaCount) 1 -}}
{{- fail (printf "replicaCount is %v, but SQLite serves one replica: set database.type=postgres (with database.postgres.existingSecret) for more" .Values.replicaCount) -}}
{{- end -}}
{{- else if not .Values.database.postgres.existingSecret -}}
{{- fail "database.type=postgres needs database.postgres.existingSecret: the Secret holding the database URL" -}}
{{- end -}}
{{- if and (not .Values.insecureDisableAuth) (not .Values.masterKey.existingSecret) (not .Values.ca.existingSecret) -}}
{{- fail "masterKey.existingSecret is required: the Secret holding the hub's master key (or give an operator CA with ca.existingSecret)" -}}
{{- end -}}
{{- $oidc := .Values.oidc -}}
{{- if and (or $oidc.issuer $oidc.clientId $oidc.jwksUrl) (not (and $oidc.issuer $oidc.clientId $oidc.jwksUrl)) -}}
{{- fail "oidc needs all of issuer, clientId and jwksUrl, or none" -}}
{{- end -}}
{{- end -}}
