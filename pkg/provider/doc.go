// Package provider implements the virtual-kubelet provider that runs every
// pod bound to the virtual node as one ECI container group.
//
// A pod's path to the cloud, and its status's path back:
//
//	pod ─▶ webhook (pkg/webhook: node selector and toleration of the virtual node)
//	    ─▶ scheduler: binds it to the virtual node
//	    ─▶ virtual-kubelet core (pkg/virtualnode) ─▶ Provider.CreatePod   create.go
//	    ─▶ translate.BuildRequest: pod ─▶ CreateContainerGroupRequest     translate/
//	    ─▶ eci.Client (pkg/eci: signing, quotas, retries) ─▶ ECI (or test/simulator)
//
//	ECI ─▶ Run's poll: DescribeContainerGroupStatus, then DescribeContainerGroups
//	    │   (only DescribeContainerGroups when the RAM policy refuses the
//	    │   status call, as the documented policy does)                 fallback.go
//	    ─▶ podStatus ─▶ push (the NotifyPods callback)                    sync.go, status.go
//	    ─▶ core ─▶ pods/status in the apiserver
//
// The Node shows the cloud's state from the ECI client's Health: the
// conditions ContainerInstanceAPI and ContainerInstancePermissions and the
// NoSchedule taint virtual-kubelet.io/cloud-unavailable (nodestatus.go);
// an action the RAM policy refuses for a pod also gets one event on it.
//
// A create the cloud cannot take now is retried with backoff (create.go).
// Groups without a pod and pods without a group are found at start-up,
// with every full listing and from informer tombstones (orphans.go).
// Projected service-account tokens, and the token of the kube-proxy a
// group runs to reach ClusterIP Services (translate/kubeproxy.go), are
// renewed in place (tokens.go); that container is kept out of the pod's
// status and events (kubeproxy.go) and out of the kubelet API. The
// kubelet API (logs, exec, attach, stats) is served by package kubeletapi
// (kubelet.go delegates to it). Metrics carry the node's name (metrics.go).
package provider
