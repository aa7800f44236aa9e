// Replaces github.com/prometheus/prometheus/plugins/plugins.go in the local cluster's build of
// Prometheus (go build -overlay, see build.sh): the only service discovery registered is
// Kubernetes', the one prometheus-operator's PodMonitors and ServiceMonitors generate. Upstream's
// file registers every discovery (AWS, Azure, GCE, Consul, ...), whose SDKs are most of the build
// time. The file and HTTP discoveries stay registered through the package's minimum.go.
package plugins

import (
	_ "github.com/prometheus/prometheus/discovery/kubernetes" // kubernetes_sd_configs
)
