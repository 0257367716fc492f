package eci

// perMinute turns a published "n calls per minute" quota into a bucket
// refilled at n/60 per second that holds five seconds' worth of calls: a
// bucket holding a whole minute would allow 2n calls in a sliding minute,
// which a cloud counting that way would throttle.
func perMinute(n int) Limit {
	return Limit{PerSecond: float64(n) / 60, Burst: max(1, n/12)}
}

// DefaultLimits are the published per-account quotas (see
// shared/reference/eci-openapi.md): Create and Delete are a bucket of 100
// refilled at 20/s; the others are calls per minute. Operations not listed
// have no published quota and are not limited on the client.
var DefaultLimits = map[string]Limit{
	"CreateContainerGroup":              {PerSecond: 20, Burst: 100},
	"DeleteContainerGroup":              {PerSecond: 20, Burst: 100},
	"DescribeContainerGroups":           perMinute(2000),
	"DescribeContainerGroupStatus":      perMinute(10000),
	"DescribeContainerGroupMetric":      perMinute(2000),
	"DescribeMultiContainerGroupMetric": perMinute(2000),
	"ExecContainerCommand":              perMinute(500),
	"DescribeContainerLog":              perMinute(500),
	"UpdateContainerGroup":              perMinute(500),
	"RestartContainerGroup":             perMinute(500),
	"CreateImageCache":                  perMinute(200),
}

// ScaledLimits are DefaultLimits multiplied by scale, for an account whose
// quotas were raised (scale > 1) or that shares them with other tools
// (scale < 1). Scale 0 disables every client-side limit: the cloud's
// Throttling answers alone then pace the calls.
func ScaledLimits(scale float64) map[string]Limit {
	out := make(map[string]Limit, len(DefaultLimits))
	for a, l := range DefaultLimits {
		if scale <= 0 {
			out[a] = Limit{}
			continue
		}
		out[a] = Limit{PerSecond: l.PerSecond * scale, Burst: max(1, int(float64(l.Burst)*scale))}
	}
	return out
}
