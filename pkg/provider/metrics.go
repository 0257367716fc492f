package provider

import "github.com/prometheus/client_golang/prometheus"

// orphansDeleted counts groups deleted because their pod was gone: a
// non-zero rate means pods are deleted while the controller cannot act.
var orphansDeleted = prometheus.NewCounter(prometheus.CounterOpts{
	Namespace: "vnode", Name: "orphan_groups_deleted_total",
	Help: "Container groups deleted because their pod no longer exists.",
})

func init() { prometheus.MustRegister(orphansDeleted) }
