{{/* Labels every resource carries, as z2jh's: app, release, component. */}}
{{- define "hubchaos.labels" -}}
app: jupyterhub
release: {{ .Release.Name }}
chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}

{{/* Required node affinity to core nodes when scheduling.corePods asks for it. */}}
{{- define "hubchaos.coreAffinity" -}}
{{- $purpose := .Values.scheduling.corePods.nodeAffinity.matchNodePurpose }}
{{- if eq $purpose "require" }}
affinity:
  nodeAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      nodeSelectorTerms:
        - matchExpressions:
            - {key: hub.jupyter.org/node-purpose, operator: In, values: [core]}
{{- else if eq $purpose "prefer" }}
affinity:
  nodeAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        preference:
          matchExpressions:
            - {key: hub.jupyter.org/node-purpose, operator: In, values: [core]}
{{- end }}
{{- end }}
