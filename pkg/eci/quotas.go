package eci

// PublishedQuotas are the per-account ECI API quotas the vendor publishes
// (source: shared/reference/eci-openapi.md, "Errors, quotas, idempotency,
// zones", the project's notes of the ECI OpenAPI documentation), each as a
// token bucket:
//
//   - CreateContainerGroup and DeleteContainerGroup: published as a bucket
//     of 100 refilled at 20/s (the notes add "1000/min", which 20/s does
//     not match; the bucket is what is modelled).
//   - the others: published as calls per minute only, with no bucket size;
//     perMinute turns each into one bucket.
//
// It is the one copy of these figures: the client paces its calls with it
// (Config.Limits, ScaledLimits) and the simulator (test/simulator) throttles
// with it, so the two share every rate and burst. Operations not listed
// have no published quota and are limited by neither.
var PublishedQuotas = map[string]Limit{
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

// perMinute turns a published "n calls per minute" quota into a bucket
// refilled at n/60 per second that holds five seconds' worth of calls
// (n/12). A bucket holding a whole minute would allow 2n calls in the
// first minute after a quiet one, which a cloud counting calls per sliding
// minute would throttle; a client within n/12 stays clear of it, and a
// simulator with n/12 refuses a client that bursts past it.
func perMinute(n int) Limit {
	return Limit{PerSecond: float64(n) / 60, Burst: max(1, n/12)}
}

// ScaledLimits are PublishedQuotas multiplied by scale, for an account whose
// quotas were raised (scale > 1) or that shares them with other tools
// (scale < 1): rates times scale, bursts times scale rounded down (at
// least 1). Scale 0 or less turns every limit off (Limit{}): the client's
// calls are then paced by the cloud's Throttling answers alone, and the
// simulator throttles nothing.
func ScaledLimits(scale float64) map[string]Limit {
	out := make(map[string]Limit, len(PublishedQuotas))
	for a, l := range PublishedQuotas {
		if scale <= 0 {
			out[a] = Limit{}
			continue
		}
		out[a] = Limit{PerSecond: l.PerSecond * scale, Burst: max(1, int(float64(l.Burst)*scale))}
	}
	return out
}
