package simulator

import (
	"hash/fnv"
	"math"
	"time"
)

// Metrics are synthetic but stable: each group gets a load factor derived
// from its id, varied gently over time, so graphs look alive and tests can
// rely on sane invariants (usage <= limit, counters increase).

const gib = 1 << 30

func loadFactor(id string, at time.Time) float64 {
	h := fnv.New32a()
	h.Write([]byte(id))
	base := 0.05 + float64(h.Sum32()%30)/100 // 5%..34%
	wave := 0.03 * math.Sin(float64(at.Unix())/300)
	return math.Max(0.01, base+wave)
}

// running reports whether the group's containers were running at "at".
func (g *group) runningAt(at time.Time) bool {
	if g.mainAt.IsZero() || at.Before(g.mainAt) {
		return false
	}
	if isTerminal(g.status) && !at.Before(g.doneAt) {
		return false
	}
	return g.status == StatusRunning || isTerminal(g.status)
}

// metricRecord synthesises one sample at "at".
func metricRecord(g *group, at time.Time) MetricRecord {
	f := loadFactor(g.id, at)
	up := at.Sub(g.mainAt).Seconds()
	memLimit := int64(g.memory * gib)
	nano := int64(f * g.cpu * 1e9)
	usage := int64((0.2 + f) * float64(memLimit))
	rec := MetricRecord{
		Timestamp: fmtTime(at),
		CPU: CPUStats{UsageNanoCores: nano, UsageCoreNanoSeconds: int64(float64(nano) * up),
			Load: int64(f * g.cpu * 100), Limit: int64(g.cpu * 1000)},
		Memory: MemoryStats{AvailableBytes: memLimit - usage*9/10, UsageBytes: usage, Cache: usage / 10,
			WorkingSet: usage * 9 / 10, Rss: usage * 7 / 10},
		Network: NetworkStats{Interfaces: []NetworkInterface{{Name: "eth0",
			RxBytes: int64(up * 2048), TxBytes: int64(up * 1024)}}},
		Containers: []ContainerMetric{},
	}
	n := int64(len(g.main))
	if n == 0 {
		return rec
	}
	for _, c := range g.main {
		rec.Containers = append(rec.Containers, ContainerMetric{
			Name: c.spec.Name,
			CPU: CPUStats{UsageNanoCores: nano / n, UsageCoreNanoSeconds: rec.CPU.UsageCoreNanoSeconds / n,
				Load: rec.CPU.Load / n, Limit: rec.CPU.Limit / n},
			Memory: MemoryStats{AvailableBytes: rec.Memory.AvailableBytes / n, UsageBytes: usage / n,
				Cache: rec.Memory.Cache / n, WorkingSet: rec.Memory.WorkingSet / n, Rss: rec.Memory.Rss / n},
		})
	}
	return rec
}

// opMultiMetric implements DescribeMultiContainerGroupMetric: the latest
// sample of each listed, running group (unknown ids are skipped).
func (s *Simulator) opMultiMetric(rc *reqCtx) (response, *apiError) {
	p := rc.p
	ids, has, err := p.jsonStrings("ContainerGroupIds", 20)
	if err != nil {
		return nil, err
	}
	if !has || len(ids) == 0 {
		return nil, errMissing("ContainerGroupIds")
	}
	if mt := p.str("MetricType"); mt != "" && mt != "summary" {
		return nil, errInvalid("MetricType", "only \"summary\" is supported")
	}
	out := []MonitorData{}
	for _, id := range ids {
		g := s.groups[id]
		if g == nil {
			continue
		}
		md := MonitorData{ContainerGroupId: id, Records: []MetricRecord{}}
		at := rc.now.Truncate(time.Second)
		if g.runningAt(at) {
			md.Records = append(md.Records, metricRecord(g, at))
		}
		out = append(out, md)
	}
	return response{"MonitorDatas": out}, nil
}

// opMetric implements DescribeContainerGroupMetric: samples every Period
// seconds (15, 60, 600 or 3600; default 60) between StartTime and EndTime
// (default the last 5 minutes) while the group was running.
func (s *Simulator) opMetric(rc *reqCtx) (response, *apiError) {
	p := rc.p
	g, err := s.lookup(p)
	if err != nil {
		return nil, err
	}
	period, err := p.integer("Period", 60, 15, 3600)
	if err != nil {
		return nil, err
	}
	if period != 15 && period != 60 && period != 600 && period != 3600 {
		return nil, errInvalid("Period", "must be 15, 60, 600 or 3600")
	}
	end, start := rc.now, rc.now.Add(-5*time.Minute)
	for _, b := range []struct {
		key string
		dst *time.Time
	}{{"StartTime", &start}, {"EndTime", &end}} {
		if v := p.str(b.key); v != "" {
			t, perr := time.Parse(time.RFC3339, v)
			if perr != nil {
				return nil, errInvalid(b.key, "%q is not an RFC 3339 time", v)
			}
			*b.dst = t
		}
	}
	if end.Before(start) {
		return nil, errInvalid("EndTime", "must not be before StartTime")
	}
	step := time.Duration(period) * time.Second
	recs := []MetricRecord{}
	for t := start.Truncate(step); !t.After(end) && len(recs) < 1440; t = t.Add(step) {
		if !t.Before(start) && !t.After(rc.now) && g.runningAt(t) {
			recs = append(recs, metricRecord(g, t))
		}
	}
	return response{"ContainerGroupId": g.id, "Records": recs}, nil
}
