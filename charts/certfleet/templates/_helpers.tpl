{{/* The name every object gets: the release's, with -certfleet unless it already says so. */}}
{{- define "certfleet.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Selects this release's pods. app.kubernetes.io/name is also the job label the alerts select. */}}
{{- define "certfleet.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "certfleet.labels" -}}
{{ include "certfleet.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "certfleet.leaseName" -}}
{{- .Values.leaderElection.leaseName | default (include "certfleet.fullname" .) -}}
{{- end -}}

{{/* Where the credentials Secret is mounted, and a key's file in it. */}}
{{- define "certfleet.secretDir" -}}/var/run/secrets/certfleet{{- end -}}

{{/* Refuse value sets that would deploy something broken, naming the value. */}}
{{- define "certfleet.validate" -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.leaderElection.enabled) -}}
{{- fail (printf "replicas is %d but leaderElection.enabled is false: two replicas without a Lease would both act; set leaderElection.enabled=true or replicas=1" (int .Values.replicas)) -}}
{{- end -}}
{{- if and .Values.webhook.enabled (not .Values.webhook.secretKey) -}}
{{- fail "webhook.enabled is true but webhook.secretKey is empty: name the key of credentials.secretName holding the webhook's shared secret, or set webhook.enabled=false" -}}
{{- end -}}
{{- if not .Values.credentials.keys.vaultToken -}}
{{- fail "credentials.keys.vaultToken is empty: the daemon needs a Vault token; name its key in credentials.secretName" -}}
{{- end -}}
{{- end -}}
