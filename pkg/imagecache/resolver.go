package imagecache

import (
	"context"
	"fmt"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/imagecache/api"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
)

// Resolver finds the cloud cache of an ImageCache object for pods that
// name it (translate.AnnotationImageCacheName).
type Resolver struct {
	Dynamic dynamic.Interface
}

// ImageCacheID returns the id of ImageCache name's Ready cache (during a
// rebuild the older generation's, status.readyImageCacheId), else an
// error saying what the pod waits for and what to do.
func (r *Resolver) ImageCacheID(ctx context.Context, name string) (string, error) {
	u, err := r.Dynamic.Resource(api.GVR).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", fmt.Errorf("ImageCache %q (annotation %s) does not exist: create it, or remove the annotation; the pod waits for it",
			name, translate.AnnotationImageCacheName)
	}
	if err != nil {
		return "", fmt.Errorf("read ImageCache %q (annotation %s): %w", name, translate.AnnotationImageCacheName, err)
	}
	ic, err := api.FromUnstructured(u)
	if err != nil {
		return "", err
	}
	st := ic.Status
	if ic.DeletionTimestamp == nil {
		if st.ReadyImageCacheId != "" {
			return st.ReadyImageCacheId, nil // during a rebuild, the older Ready cache
		}
		if st.Phase == eci.ImageCacheReady && st.ImageCacheId != "" {
			return st.ImageCacheId, nil // a status written before readyImageCacheId
		}
	}
	why := "phase " + st.Phase
	switch {
	case ic.DeletionTimestamp != nil:
		why = "it is being deleted"
	case st.Phase == "":
		why = "the ImageCache controller has not handled it yet"
	case st.Progress != "":
		why += " (" + st.Progress + ")"
	}
	if st.Message != "" {
		why += ": " + st.Message
	}
	return "", fmt.Errorf("ImageCache %q (annotation %s) is not Ready, %s; the pod waits and is retried (kubectl get imagecache %s)",
		name, translate.AnnotationImageCacheName, why, name)
}
