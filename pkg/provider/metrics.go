package provider

import "github.com/prometheus/client_golang/prometheus"

// orphansDeleted counts groups deleted because their pod was gone: a
// non-zero rate means pods are deleted while the controller cannot act.
var orphansDeleted = prometheus.NewCounter(prometheus.CounterOpts{
	Namespace: "vnode", Name: "orphan_groups_deleted_total",
	Help: "Container groups deleted because their pod no longer exists.",
})

// listingMisses counts groups a full status listing left out although they
// existed: the pod was kept, but a rising count means the cloud's listing
// cannot be trusted alone.
var listingMisses = prometheus.NewCounter(prometheus.CounterOpts{
	Namespace: "vnode", Name: "status_listing_misses_total",
	Help: "Container groups missing from a full status listing but found when described by id.",
})

func init() { prometheus.MustRegister(orphansDeleted, listingMisses) }
