{{- define "marketplace.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "marketplace.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else if contains (include "marketplace.name" .) .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "marketplace.name" .) | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "marketplace.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "marketplace.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The selector of one component: include "marketplace.selector" (list . "api") */}}
{{- define "marketplace.selector" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: {{ include "marketplace.name" $ }}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "marketplace.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}
{{- end }}

{{- define "marketplace.serviceAccount" -}}
{{- if .Values.serviceAccount.create }}{{ default (include "marketplace.fullname" .) .Values.serviceAccount.name }}{{ else }}{{ default "default" .Values.serviceAccount.name }}{{ end }}
{{- end }}

{{/* K8S_NAMESPACE_PREFIX: the names of the cluster-wide objects the marketplace makes start with it. */}}
{{- define "marketplace.namespacePrefix" -}}
{{- .Values.config.K8S_NAMESPACE_PREFIX | default "mp" }}
{{- end }}

{{/* The environment every role gets: the settings Secret, the URLs of existing Secrets, the kubeconfig. */}}
{{- define "marketplace.env" -}}
- name: MARKETPLACE_ADDR
  value: ":3000"
{{- with .Values.postgresql.existingSecret }}{{ if .name }}
- name: DATABASE_URL
  valueFrom: {secretKeyRef: {name: {{ .name | quote }}, key: {{ .key | quote }}}}
{{- end }}{{ end }}
{{- with .Values.redis.existingSecret }}{{ if .name }}
- name: REDIS_URL
  valueFrom: {secretKeyRef: {name: {{ .name | quote }}, key: {{ .key | quote }}}}
{{- end }}{{ end }}
{{- if .Values.kubernetes.enabled }}
- name: KUBECONFIG
  value: /etc/marketplace/kubeconfig
{{- end }}
{{- end }}

{{/* The pod spec parts every pod shares. */}}
{{- define "marketplace.podCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets: {{- toYaml . | nindent 2 }}
{{- end }}
securityContext: {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity: {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
