// Package kubeconfig finds the Kubernetes API server for every binary of
// the project, in one of two ways:
//
//   - Load, for what runs in the cluster (the controller, `virtual-node
//     drain`, the webhook, the approver): the kubeconfig file at a path
//     (KUBECONFIG or a --kubeconfig flag), or the pod's in-cluster config
//     when the path is empty.
//   - Kubectl, for vnodectl on an operator's machine: the kubeconfig the way
//     kubectl finds it (the path, else $KUBECONFIG, else ~/.kube/config).
package kubeconfig

import (
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Load returns the REST config of the kubeconfig file at path, or the
// in-cluster config (the pod's service account) when path is empty. The
// caller owns the result and may set its QPS, Burst and UserAgent.
func Load(path string) (*rest.Config, error) {
	if path == "" {
		c, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("KUBECONFIG is empty and no in-cluster config is available (set KUBECONFIG to run outside a cluster): %w", err)
		}
		return c, nil
	}
	c, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("KUBECONFIG %s: %w", path, err)
	}
	return c, nil
}

// Kubectl returns the kubeconfig the way kubectl reads it: the file at
// path if set, else the files listed in $KUBECONFIG, else ~/.kube/config;
// context, if set, replaces the current context. Nothing is read until the
// result's ClientConfig or RawConfig is called.
func Kubectl(path, context string) clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = path
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: context})
}
