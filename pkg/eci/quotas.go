package eci

// PublishedQuotas are the per-account ECI API quotas the vendor publishes
// (source: shared/reference/eci-openapi.md, "Errors, quotas, idempotency,
// zones", the project's notes of the ECI OpenAPI documentation), each as a
// token bucket:
//
//   - CreateContainerGroup and DeleteContainerGroup: published as a bucket
//     of 100 refilled at 20/s (the notes add "1000/min", which 20/s does
//     not match; the bucket is what is modelled).
//   - the others: published as n calls per minute, with no bucket size:
//     perMinute models "n per minute" as a bucket of n refilled at n/60
//     per second.
//
// It is the one copy of these figures. The simulator (test/simulator)
// throttles with them as published (ScaledLimits); the client paces itself
// a little below them (ClientLimits). Operations not listed have no
// published quota and are limited by neither.
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

// perMinute is a published "n calls per minute" quota: n at once after a
// quiet minute, n/60 per second after that.
func perMinute(n int) Limit {
	return Limit{PerSecond: float64(n) / 60, Burst: n}
}

// clientBurstSeconds caps the client's bursts at this many seconds' worth
// of an operation's rate. A published "n per minute" taken as a bucket of
// n lets 2n calls through in the first minute after a quiet one, which a
// cloud counting calls per sliding minute would throttle; five seconds'
// worth (n/12) stays clear of any such window. Create and Delete, whose
// published bucket is five seconds' worth already, keep it.
const clientBurstSeconds = 5

// ScaledLimits are PublishedQuotas multiplied by scale, for an account whose
// quotas were raised (scale > 1) or that shares them with other tools
// (scale < 1): rates times scale, bursts times scale rounded down (at
// least 1). Scale 0 or less turns every limit off (Limit{}). The simulator
// throttles with these.
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

// ClientLimits are the limits the client paces itself with: ScaledLimits
// with each burst capped at clientBurstSeconds of its rate. Scale 0 or
// less turns every limit off, leaving pacing to the cloud's Throttling
// answers.
func ClientLimits(scale float64) map[string]Limit {
	out := ScaledLimits(scale)
	for a, l := range out {
		if l.PerSecond > 0 {
			l.Burst = max(1, min(l.Burst, int(l.PerSecond*clientBurstSeconds)))
			out[a] = l
		}
	}
	return out
}
