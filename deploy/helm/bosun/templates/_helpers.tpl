{{/*
Names. Kubernetes names are limited to 63 characters (DNS labels).
*/}}
{{- define "bosun.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "bosun.fullname" -}}
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

{{- define "bosun.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Per-component names: the release's full name plus the component, e.g. bosun-apiserver. */}}
{{- define "bosun.apiserver.fullname" -}}
{{- printf "%s-apiserver" (include "bosun.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "bosun.etcd.fullname" -}}
{{- printf "%s-etcd" (include "bosun.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "bosun.etcd.headless" -}}
{{- printf "%s-etcd-headless" (include "bosun.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels: the recommended app.kubernetes.io set. Call with (dict "ctx" $ "component" "apiserver").
*/}}
{{- define "bosun.labels" -}}
helm.sh/chart: {{ include "bosun.chart" .ctx }}
{{ include "bosun.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: bosun
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "bosun.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bosun.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end }}

{{- define "bosun.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "bosun.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
An image reference. Call with (dict "ctx" $ "image" .Values.apiserver.image).
*/}}
{{- define "bosun.image" -}}
{{- $registry := .ctx.Values.global.imageRegistry -}}
{{- $ref := printf "%s:%s" .image.repository (.image.tag | default .ctx.Chart.AppVersion | toString) -}}
{{- if $registry }}{{ printf "%s/%s" (trimSuffix "/" $registry) $ref }}{{ else }}{{ $ref }}{{ end }}
{{- end }}

{{- define "bosun.imagePullSecrets" -}}
{{- with .Values.global.imagePullSecrets }}
imagePullSecrets:
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The apiserver's --etcd-servers: the chart's etcd client Service (a stable ClusterIP), or the
external endpoints.
*/}}
{{- define "bosun.etcd.servers" -}}
{{- if .Values.etcd.enabled }}
{{- printf "%s:%v" (include "bosun.etcd.fullname" .) .Values.etcd.clientPort }}
{{- else }}
{{- required "externalEtcd.endpoints must list at least one host:port when etcd.enabled is false" (join "," .Values.externalEtcd.endpoints) }}
{{- end }}
{{- end }}

{{/*
etcd's --initial-cluster for a new cluster of etcd.replicaCount members, addressed through the
headless Service: name-0=http://name-0.headless.ns.svc.domain:2380,...
*/}}
{{- define "bosun.etcd.initialCluster" -}}
{{- $name := include "bosun.etcd.fullname" . }}
{{- $headless := include "bosun.etcd.headless" . }}
{{- $members := list }}
{{- range $i := until (int .Values.etcd.replicaCount) }}
{{- $members = append $members (printf "%s-%d=http://%s-%d.%s.%s.svc.%s:%v" $name $i $name $i $headless $.Release.Namespace $.Values.global.clusterDomain $.Values.etcd.peerPort) }}
{{- end }}
{{- join "," $members }}
{{- end }}

{{- define "bosun.scheduler.fullname" -}}
{{- printf "%s-scheduler" (include "bosun.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "bosun.controllerManager.fullname" -}}
{{- printf "%s-controller-manager" (include "bosun.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "bosun.kubelet.fullname" -}}
{{- printf "%s-kubelet" (include "bosun.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "bosun.proxy.fullname" -}}
{{- printf "%s-proxy" (include "bosun.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "bosun.dns.fullname" -}}
{{- printf "%s-dns" (include "bosun.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Where the components reach the apiserver: its Service's cluster-local name. A name rather than an
address, so that a recreated Service does not strand them; pods on the node's network resolve it
through dnsPolicy ClusterFirstWithHostNet.
*/}}
{{- define "bosun.apiserver.address" -}}
{{- printf "%s.%s.svc.%s:%v" (include "bosun.apiserver.fullname" .) .Release.Namespace .Values.global.clusterDomain .Values.apiserver.port }}
{{- end }}

{{/*
A replicated component needs leader election. Call with (dict "name" "scheduler" "values" .Values.scheduler).
*/}}
{{- define "bosun.requireLeaderElection" -}}
{{- if and (gt (int .values.replicaCount) 1) (not .values.leaderElection.enabled) }}
{{- fail (printf "%s.replicaCount is %v but %s.leaderElection.enabled is false: replicas would act at once" .name .values.replicaCount .name) }}
{{- end }}
{{- end }}

{{/*
The default affinity of a replicated Deployment: replicas prefer different nodes. Call with
(dict "ctx" $ "component" "scheduler" "affinity" .Values.scheduler.affinity).
*/}}
{{- define "bosun.affinity" -}}
{{- if .affinity }}
{{- toYaml .affinity }}
{{- else }}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "bosun.selectorLabels" (dict "ctx" .ctx "component" .component) | nindent 12 }}
{{- end }}
{{- end }}
