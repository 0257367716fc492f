// Package translate maps a pod to the CreateContainerGroup request of its
// ECI container group: containers, probes, hooks and security context;
// env, volumes and pull secrets resolved from the cluster; DNS; the
// k8s.aliyun.com/eci-* annotations; the hidden kube-proxy container of pods
// that reach ClusterIP Services (kubeproxy.go); and the tags by which the
// provider finds its groups again.
//
// The cluster is read through a Resolver (resolver.go), and only after the
// pod has been checked: whatever the pod says wrong on its own is refused
// (InvalidPodError, naming the field and the fix) before any object is
// read or any service-account token is minted.
package translate
