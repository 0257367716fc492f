package virtualnode

import (
	"context"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/config"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/imagecache"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
)

// runImageCaches runs the ImageCache controller until ctx ends (the first
// node's Lease is lost or the replica stops). Its build instances run in
// the controller's vSwitches and security group.
func runImageCaches(ctx context.Context, cfg *config.Config, kube kubernetes.Interface, dyn dynamic.Interface,
	cloud imagecache.Cloud, clusterID string, recorder record.EventRecorder) {
	err := imagecache.Run(ctx, imagecache.Options{
		Kube: kube, Dynamic: dyn, Cloud: cloud, Recorder: recorder, ClusterID: clusterID,
		VSwitches: cfg.VSwitches, SecurityGroup: cfg.SecurityGroup, ResourceGroupID: cfg.ResourceGroupID,
	})
	if err != nil {
		klog.FromContext(ctx).Error(err, "ImageCache controller stopped")
	}
}
