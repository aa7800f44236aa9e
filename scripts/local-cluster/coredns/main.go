// CoreDNS with only the plugins the local cluster's Corefile uses (manifests/coredns.yaml).
//
// The upstream command (github.com/coredns/coredns, main package at the module root) links every
// plugin through core/plugin, including route53, azure and clouddns with their cloud SDKs, which
// is most of its build time. A main package of one's own that imports coremain and the wanted
// plugins is how CoreDNS is built with another plugin set; the directive order stays upstream's
// (dnsserver.Directives), and a directive whose plugin is not linked fails at start-up by name.
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics" // the "prometheus" directive
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

func main() {
	coremain.Run()
}
