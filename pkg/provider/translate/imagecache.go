package translate

// AnnotationImageCacheName names a cluster-scoped ImageCache object
// (eci.alibabacloud.com/v1, pkg/imagecache): the provider resolves it to
// the object's cloud cache id (status.imageCacheId), sent as the group's
// ImageSnapshotId like k8s.aliyun.com/eci-imc-id. A cache that is not
// Ready keeps the pod Pending with an event saying why.
const AnnotationImageCacheName = "k8s.aliyun.com/eci-image-cache-name"
