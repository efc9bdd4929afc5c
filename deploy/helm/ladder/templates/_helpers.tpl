{{- define "ladder.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}{{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "ladder.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "ladder.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "ladder.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}{{ default (include "ladder.fullname" .) .Values.serviceAccount.name }}{{- else -}}{{ default "default" .Values.serviceAccount.name }}{{- end -}}
{{- end -}}

{{- define "ladder.image" -}}
{{- if .Values.image.digest -}}{{ .Values.image.repository }}@{{ .Values.image.digest }}{{- else -}}{{ .Values.image.repository }}:{{ .Values.image.tag }}{{- end -}}
{{- end -}}

{{- define "ladder.jobsNamespace" -}}
{{ default .Release.Namespace .Values.jobs.namespace }}
{{- end -}}

{{- define "ladder.ingestUrl" -}}
{{- if .Values.api.ingestUrl -}}{{ .Values.api.ingestUrl }}{{- else -}}http://{{ include "ladder.fullname" . }}-api.{{ .Release.Namespace }}.svc:{{ .Values.service.port }}/ingest/v1{{- end -}}
{{- end -}}

{{/* Env shared by worker and API: database, Temporal, ingest secret. */}}
{{- define "ladder.commonEnv" -}}
- name: DATABASE_URL
  valueFrom: { secretKeyRef: { name: {{ .Values.secrets.existingSecret }}, key: {{ .Values.secrets.databaseUrlKey }} } }
- name: LADDER_INGEST_SECRET
  valueFrom: { secretKeyRef: { name: {{ .Values.secrets.existingSecret }}, key: {{ .Values.secrets.ingestSecretKey }} } }
- name: TEMPORAL_ADDRESS
  valueFrom: { configMapKeyRef: { name: {{ include "ladder.fullname" . }}, key: TEMPORAL_ADDRESS } }
- name: TEMPORAL_NAMESPACE
  valueFrom: { configMapKeyRef: { name: {{ include "ladder.fullname" . }}, key: TEMPORAL_NAMESPACE } }
- name: LADDER_TASK_QUEUE
  valueFrom: { configMapKeyRef: { name: {{ include "ladder.fullname" . }}, key: LADDER_TASK_QUEUE } }
{{- if .Values.temporal.tls.enabled }}
- name: TEMPORAL_TLS_CERT
  value: /etc/ladder/temporal-tls/tls.crt
- name: TEMPORAL_TLS_KEY
  value: /etc/ladder/temporal-tls/tls.key
- name: TEMPORAL_TLS_CA
  value: /etc/ladder/temporal-tls/ca.crt
- name: TEMPORAL_TLS_SERVER_NAME
  value: {{ .Values.temporal.tls.serverName | quote }}
{{- end }}
{{- end -}}

{{- define "ladder.tlsVolumeMounts" -}}
{{- if .Values.temporal.tls.enabled }}
- name: temporal-tls
  mountPath: /etc/ladder/temporal-tls
  readOnly: true
{{- end }}
- name: tmp
  mountPath: /tmp
{{- end -}}

{{- define "ladder.tlsVolumes" -}}
{{- if .Values.temporal.tls.enabled }}
- name: temporal-tls
  secret: { secretName: {{ required "temporal.tls.existingSecret is required when TLS is enabled" .Values.temporal.tls.existingSecret }} }
{{- end }}
- name: tmp
  emptyDir: {}
{{- end -}}
