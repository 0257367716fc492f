package provider

import (
	"context"
	"errors"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	corev1 "k8s.io/api/core/v1"
)

// ImageCacheResolver finds the cloud cache of an ImageCache object
// (pkg/imagecache.Resolver): its id when it is Ready, else an error
// saying why the pod waits.
type ImageCacheResolver interface {
	ImageCacheID(ctx context.Context, name string) (string, error)
}

// resolveImageCache sends the cache of the ImageCache the pod names as
// its ImageSnapshotId. A cache that is not Ready (or missing) is an error
// the pod waits on and is retried with, its message the pod's event.
func (p *Provider) resolveImageCache(ctx context.Context, pod *corev1.Pod, req *eci.CreateContainerGroupRequest) error {
	name := pod.Annotations[translate.AnnotationImageCacheName]
	if name == "" {
		return nil
	}
	if id := pod.Annotations[translate.AnnotationIMCID]; id != "" {
		return &translate.InvalidPodError{Field: "metadata.annotations", Reason: "sets both " + translate.AnnotationImageCacheName + " and " + translate.AnnotationIMCID,
			Fix: "keep one: the ImageCache name or the cache id"}
	}
	if p.opts.ImageCaches == nil {
		return errors.New("this controller does not resolve ImageCache names (annotation " + translate.AnnotationImageCacheName + "): use " + translate.AnnotationIMCID + " with the cache id")
	}
	id, err := p.opts.ImageCaches.ImageCacheID(ctx, name)
	if err != nil {
		return err
	}
	req.ImageSnapshotId = id
	return nil
}
