{{/* Name of fedchem's own objects: <release>-fedchem (63 characters at most). */}}
{{- define "fedchem.fullname" -}}
{{- printf "%s-fedchem" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every fedchem object. */}}
{{- define "fedchem.labels" -}}
app.kubernetes.io/name: fedchem-node
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: fedchem
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
fedchem.io/partner: {{ .Values.fedchem.partner | quote }}
{{- end -}}

{{/* Selector of the backend API server pods (labels set by Substra's substra-backend chart). */}}
{{- define "fedchem.backendServerSelector" -}}
app.kubernetes.io/name: substra-backend-server
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
Checks the schema cannot express, each failing with a message saying what to fix. Rendered (empty) by every
template of this chart so that `helm template` and `helm install` stop before producing anything.
*/}}
{{- define "fedchem.guards" -}}
{{- $f := .Values.fedchem -}}
{{- $b := index .Values "substra-backend" -}}
{{- $_ := required "fedchem.partner is required: the organisation's name (generate values with `fedchem node values PARTNER`)" $f.partner -}}
{{- $_ := required "fedchem.organization is required: the organisation's Substra MSP id" $f.organization -}}
{{- $_ := required "fedchem.backendHost is required: the backend's public DNS name" $f.backendHost -}}
{{- $_ := required "fedchem.frontendHost is required: the web UI's public DNS name" $f.frontendHost -}}
{{- if ne $b.organizationName $f.partner -}}
{{- fail (printf "substra-backend.organizationName (%s) must equal fedchem.partner (%s)" $b.organizationName $f.partner) -}}
{{- end -}}
{{- if ne $b.orchestrator.mspID $f.organization -}}
{{- fail (printf "substra-backend.orchestrator.mspID (%s) must equal fedchem.organization (%s)" $b.orchestrator.mspID $f.organization) -}}
{{- end -}}
{{- if and $f.tls.enabled (not $f.tls.secretName) -}}
{{- fail "fedchem.tls.enabled needs fedchem.tls.secretName: the Kubernetes TLS secret of the ingresses" -}}
{{- end -}}
{{- if ne $b.addAccountOperator.existingSecret $f.secretNames.accounts -}}
{{- fail "substra-backend.addAccountOperator.existingSecret must be fedchem.secretNames.accounts: credentials are never written in values" -}}
{{- end -}}
{{- end -}}
