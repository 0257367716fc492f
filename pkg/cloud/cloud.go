// Package cloud builds, from the controller's configuration, what reaches
// this cluster's container groups: the cluster ID they are tagged with and
// the ECI client. The controller (pkg/virtualnode) and `virtual-node drain`
// (pkg/drain) both use it, so the drain finds the groups the controller
// made and keeps to the same API quotas.
package cloud

import (
	"context"
	"fmt"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/config"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/aliyun/credentials-go/credentials"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// ClusterID returns CLUSTER_ID (cfg.ClusterID), or when it is empty the UID
// of the kube-system namespace, which lives as long as the cluster.
func ClusterID(ctx context.Context, cfg *config.Config, kube kubernetes.Interface) (string, error) {
	if cfg.ClusterID != "" {
		return cfg.ClusterID, nil
	}
	ns, err := kube.CoreV1().Namespaces().Get(ctx, metav1.NamespaceSystem, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("CLUSTER_ID is empty and the kube-system namespace UID cannot be read to derive it: %w", err)
	}
	return string(ns.UID), nil
}

// NewClient returns the ECI client of ECI_REGION and ECI_ENDPOINT, paced by
// the published API quotas scaled by ECI_API_QUOTA_SCALE, of which this
// cluster takes ECI_API_QUOTA_SHARE (QuotaLimits), with credentials
// from cred, or when it is nil from the default chain (eci.DefaultCredential),
// asked for on every call. Its calls are counted in metrics (nil: counted
// nowhere).
func NewClient(cfg *config.Config, cred credentials.Credential, metrics *eci.Metrics) (*eci.Client, error) {
	return NewClientWithHealth(cfg, cred, metrics, nil)
}

// NewClientWithHealth is NewClient whose every attempt's outcome is seen by
// health (nil: by nothing), as the controller shows it on its Nodes.
func NewClientWithHealth(cfg *config.Config, cred credentials.Credential, metrics *eci.Metrics, health *eci.Health) (*eci.Client, error) {
	return eci.NewClient(eci.Config{RegionId: cfg.Region, Endpoint: cfg.Endpoint, Credential: cred,
		Limits: QuotaLimits(cfg), Metrics: metrics, Health: health})
}

// QuotaLimits are the client limits of this cluster: the published quotas
// times ECI_API_QUOTA_SCALE (the account's budget) times ECI_API_QUOTA_SHARE
// (this cluster's part of it). The replicas of the controller split these
// further among themselves at run time (eci.Client.SetShare).
func QuotaLimits(cfg *config.Config) map[string]eci.Limit {
	share := cfg.ECIQuotaShare
	if share <= 0 { // a configuration built in code without it
		share = 1
	}
	return eci.ClientLimits(cfg.ECIQuotaScale * share)
}
