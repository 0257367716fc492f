// Command vnode-webhook is virtual-node-affinity-admission-controller: the
// mutating admission webhook that sends labelled pods (and pods matching
// eci-profile selectors) to the virtual node. Configuration comes from
// environment variables (see pkg/webhook Config); the flags below override
// the most common ones.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/version"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/webhook"
	"k8s.io/klog/v2"
)

func main() {
	klog.InitFlags(nil)
	showVersion := flag.Bool("version", false, "print the version and exit")
	var o webhook.Config
	flag.StringVar(&o.ListenAddr, "listen-address", "", "TLS address of the admission endpoint (WEBHOOK_LISTEN_ADDR)")
	flag.StringVar(&o.Namespace, "namespace", "", "release namespace of the Service and certificate Secret (WEBHOOK_NAMESPACE)")
	flag.StringVar(&o.ServiceName, "service-name", "", "Service in front of the webhook (WEBHOOK_SERVICE_NAME)")
	flag.StringVar(&o.CertSecretName, "cert-secret", "", "Secret holding the CA and serving certificate (WEBHOOK_CERT_SECRET)")
	flag.StringVar(&o.ConfigurationName, "configuration-name", "", "MutatingWebhookConfiguration to manage (WEBHOOK_CONFIGURATION_NAME)")
	flag.StringVar(&o.URL, "url", "", "https URL clientConfig instead of the Service, for out-of-cluster runs (WEBHOOK_URL)")
	flag.StringVar(&o.MetricsAddr, "metrics-address", "", "plain-HTTP address of /metrics and /healthz (WEBHOOK_METRICS_ADDR)")
	flag.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig path; empty means in-cluster (KUBECONFIG)")
	flag.Parse()
	if *showVersion {
		fmt.Println(version.Version)
		return
	}
	cfg, err := webhook.ConfigFromEnv()
	if err == nil {
		// Flags set on the command line win over the environment.
		flag.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "listen-address":
				cfg.ListenAddr = o.ListenAddr
			case "namespace":
				cfg.Namespace = o.Namespace
			case "service-name":
				cfg.ServiceName = o.ServiceName
			case "cert-secret":
				cfg.CertSecretName = o.CertSecretName
			case "configuration-name":
				cfg.ConfigurationName = o.ConfigurationName
			case "url":
				cfg.URL = o.URL
			case "metrics-address":
				cfg.MetricsAddr = o.MetricsAddr
			case "kubeconfig":
				cfg.Kubeconfig = o.Kubeconfig
			}
		})
		err = cfg.Validate()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := webhook.Run(ctx, webhook.Options{Config: cfg}); err != nil {
		klog.ErrorS(err, "webhook failed")
		os.Exit(1)
	}
}
