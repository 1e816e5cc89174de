{{- define "minop.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains "minop" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-minop" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "minop.selectorLabels" -}}
app.kubernetes.io/name: minop
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "minop.labels" -}}
{{ include "minop.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "minop.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "minop.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name: required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The enabled plugins, comma-separated: the operator's MINOP_PLUGINS allow-list. */}}
{{- define "minop.plugins" -}}
{{- $on := list -}}
{{- range $name, $enabled := .Values.plugins -}}
{{- if $enabled -}}{{- $on = append $on $name -}}{{- end -}}
{{- end -}}
{{- if not $on -}}{{- fail "plugins: enable at least one plugin" -}}{{- end -}}
{{- join "," $on -}}
{{- end -}}

{{- define "minop.namespacedRules" }}
- apiGroups:
  - ''
  resources:
  - events
  verbs:
  - get
  - create
  - patch
{{- if index .Values.plugins "memcached" }}
- apiGroups:
  - ''
  resources:
  - pods
  verbs:
  - get
  - list
  - watch
- apiGroups:
  - ''
  resources:
  - secrets
  verbs:
  - get
  - list
  - watch
- apiGroups:
  - ''
  resources:
  - services
  verbs:
  - get
  - list
  - watch
  - create
  - update
  - patch
  - delete
- apiGroups:
  - apps
  resources:
  - deployments
  verbs:
  - get
  - list
  - watch
  - create
  - update
  - patch
  - delete
- apiGroups:
  - apps
  resources:
  - statefulsets
  verbs:
  - get
  - list
  - watch
  - create
  - update
  - patch
  - delete
- apiGroups:
  - cache.minop.dev
  resources:
  - memcacheds
  verbs:
  - get
  - list
  - watch
  - update
  - patch
- apiGroups:
  - cache.minop.dev
  resources:
  - memcacheds/finalizers
  verbs:
  - update
- apiGroups:
  - cache.minop.dev
  resources:
  - memcacheds/status
  verbs:
  - get
  - update
  - patch
- apiGroups:
  - networking.k8s.io
  resources:
  - networkpolicies
  verbs:
  - get
  - list
  - watch
  - create
  - update
  - patch
  - delete
- apiGroups:
  - policy
  resources:
  - poddisruptionbudgets
  verbs:
  - get
  - list
  - watch
  - create
  - update
  - patch
  - delete
- apiGroups:
  - monitoring.coreos.com
  resources:
  - servicemonitors
  verbs:
  - get
  - create
  - patch
  - delete
{{- end }}
{{- if index .Values.plugins "nginx" }}
- apiGroups:
  - ''
  resources:
  - configmaps
  verbs:
  - get
  - list
  - watch
  - create
  - update
  - patch
  - delete
- apiGroups:
  - ''
  resources:
  - pods
  verbs:
  - get
  - list
  - watch
- apiGroups:
  - ''
  resources:
  - secrets
  verbs:
  - get
  - list
  - watch
- apiGroups:
  - ''
  resources:
  - services
  verbs:
  - get
  - list
  - watch
  - create
  - update
  - patch
  - delete
- apiGroups:
  - apps
  resources:
  - deployments
  verbs:
  - get
  - list
  - watch
  - create
  - update
  - patch
  - delete
- apiGroups:
  - policy
  resources:
  - poddisruptionbudgets
  verbs:
  - get
  - list
  - watch
  - create
  - update
  - patch
  - delete
- apiGroups:
  - web.minop.dev
  resources:
  - nginxservers
  verbs:
  - get
  - list
  - watch
  - update
  - patch
- apiGroups:
  - web.minop.dev
  resources:
  - nginxservers/finalizers
  verbs:
  - update
- apiGroups:
  - web.minop.dev
  resources:
  - nginxservers/status
  verbs:
  - get
  - update
  - patch
- apiGroups:
  - monitoring.coreos.com
  resources:
  - servicemonitors
  verbs:
  - get
  - create
  - patch
  - delete
{{- end }}
{{- if index .Values.plugins "redis" }}
- apiGroups:
  - ''
  resources:
  - configmaps
  verbs:
  - get
  - list
  - watch
  - create
  - update
  - patch
  - delete
- apiGroups:
  - ''
  resources:
  - persistentvolumeclaims
  verbs:
  - get
  - list
  - watch
- apiGroups:
  - ''
  resources:
  - pods
  verbs:
  - get
  - list
  - watch
- apiGroups:
  - ''
  resources:
  - secrets
  verbs:
  - get
  - list
  - watch
  - create
  - update
  - patch
  - delete
- apiGroups:
  - ''
  resources:
  - services
  verbs:
  - get
  - list
  - watch
  - create
  - update
  - patch
  - delete
- apiGroups:
  - apps
  resources:
  - statefulsets
  verbs:
  - get
  - list
  - watch
  - create
  - update
  - patch
  - delete
- apiGroups:
  - cache.minop.dev
  resources:
  - redises
  verbs:
  - get
  - list
  - watch
  - update
  - patch
- apiGroups:
  - cache.minop.dev
  resources:
  - redises/finalizers
  verbs:
  - update
- apiGroups:
  - cache.minop.dev
  resources:
  - redises/status
  verbs:
  - get
  - update
  - patch
- apiGroups:
  - networking.k8s.io
  resources:
  - networkpolicies
  verbs:
  - get
  - list
  - watch
  - create
  - update
  - patch
  - delete
- apiGroups:
  - policy
  resources:
  - poddisruptionbudgets
  verbs:
  - get
  - list
  - watch
  - create
  - update
  - patch
  - delete
- apiGroups:
  - ''
  resources:
  - persistentvolumeclaims
  verbs:
  - patch
- apiGroups:
  - ''
  resources:
  - pods
  verbs:
  - patch
- apiGroups:
  - monitoring.coreos.com
  resources:
  - servicemonitors
  verbs:
  - get
  - create
  - patch
  - delete
- apiGroups:
  - monitoring.coreos.com
  resources:
  - prometheusrules
  verbs:
  - get
  - create
  - patch
  - delete
{{- end }}
{{- end -}}
{{- define "minop.clusterRules" }}
{{- if index .Values.plugins "redis" }}
- apiGroups:
  - storage.k8s.io
  resources:
  - storageclasses
  verbs:
  - get
{{- end }}
{{- end -}}
{{- define "minop.leaseRules" }}
- apiGroups:
  - coordination.k8s.io
  resources:
  - leases
  verbs:
  - get
  - list
  - create
  - update
  - delete
{{- end -}}
{{- define "minop.webhookRules" }}
{{- end -}}
{{- define "minop.examples" }}
{{- if index .Values.plugins "memcached" }}

kubectl apply -n <namespace> -f - <<'EOF'
apiVersion: cache.minop.dev/v1alpha1
kind: Memcached
metadata:
  name: memcached-sample
spec:
  size: 3
  memoryLimitMB: 128
  maxConnections: 2048
  resources:
    requests:
      cpu: 100m
      memory: 160Mi
    limits:
      memory: 160Mi
EOF
{{- end }}
{{- if index .Values.plugins "nginx" }}

kubectl apply -n <namespace> -f - <<'EOF'
apiVersion: web.minop.dev/v1alpha1
kind: NginxServer
metadata:
  name: nginx-sample
spec:
  replicas: 2
  port: 8080
  healthcheckPath: /healthz
EOF
{{- end }}
{{- if index .Values.plugins "redis" }}

kubectl apply -n <namespace> -f - <<'EOF'
apiVersion: cache.minop.dev/v1alpha1
kind: Redis
metadata:
  name: redis-sample
spec:
  replicas: 3
  storage:
    size: 1Gi
EOF
{{- end }}
{{- end -}}
