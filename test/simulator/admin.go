package simulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
)

// The admin API is unsigned JSON under /admin/. It mirrors the Go API so
// that scripts and out-of-process tests can steer the simulated cloud.

// StockAmount is a vCPU / GiB pair.
type StockAmount struct {
	Cpu    float64 `json:"cpu"`
	Memory float64 `json:"memory"`
}

// VSwitchState reports IP usage of a vSwitch.
type VSwitchState struct {
	VSwitchId string `json:"vSwitchId"`
	CidrBlock string `json:"cidrBlock"`
	IpsInUse  int    `json:"ipsInUse"`
	IpsFree   int    `json:"ipsFree"`
}

// ZoneState reports a zone's stock and usage.
type ZoneState struct {
	ZoneId    string         `json:"zoneId"`
	Stock     StockAmount    `json:"stock"`
	Used      StockAmount    `json:"used"`
	Free      StockAmount    `json:"free"`
	VSwitches []VSwitchState `json:"vSwitches"`
}

// GroupSummary is a one-line view of a group.
type GroupSummary struct {
	ContainerGroupId   string  `json:"containerGroupId"`
	ContainerGroupName string  `json:"containerGroupName"`
	Status             string  `json:"status"`
	ZoneId             string  `json:"zoneId"`
	VSwitchId          string  `json:"vSwitchId"`
	IntranetIp         string  `json:"intranetIp"`
	Cpu                float64 `json:"cpu"`
	Memory             float64 `json:"memory"`
	CreationTime       string  `json:"creationTime"`
	PodNamespace       string  `json:"podNamespace,omitempty"`
	PodName            string  `json:"podName,omitempty"`
}

// State is the admin overview returned by GET /admin/state.
type State struct {
	RegionId    string         `json:"regionId"`
	VpcId       string         `json:"vpcId"`
	Now         string         `json:"now"`
	Zones       []ZoneState    `json:"zones"`
	Groups      []GroupSummary `json:"groups"`
	ImageCaches int            `json:"imageCaches"`
	Faults      []Fault        `json:"faults"`
}

// State returns zones with stock used/free and a summary of all groups.
func (s *Simulator) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.advanceAll(now)
	st := State{RegionId: s.cfg.RegionId, VpcId: s.cfg.VpcId, Now: fmtTime(now),
		ImageCaches: len(s.caches), Faults: s.faultsLocked(), Groups: []GroupSummary{}}
	for _, id := range s.zoneOrder {
		z := s.zones[id]
		uc, um := s.used(id)
		zs := ZoneState{ZoneId: id, Stock: StockAmount{z.stockCPU, z.stockMem}, Used: StockAmount{uc, um},
			Free: StockAmount{z.stockCPU - uc, z.stockMem - um}, VSwitches: []VSwitchState{}}
		for _, v := range z.cfg.VSwitches {
			vs := s.vswitches[v.VSwitchId]
			zs.VSwitches = append(zs.VSwitches, VSwitchState{VSwitchId: v.VSwitchId, CidrBlock: v.CidrBlock,
				IpsInUse: len(vs.inUse), IpsFree: vs.free()})
		}
		st.Zones = append(st.Zones, zs)
	}
	for _, g := range s.sortedGroups() {
		st.Groups = append(st.Groups, GroupSummary{ContainerGroupId: g.id, ContainerGroupName: g.spec.name,
			Status: g.status, ZoneId: g.zoneID, VSwitchId: g.vswitchID, IntranetIp: g.ip, Cpu: g.cpu,
			Memory: g.memory, CreationTime: fmtTime(g.created), PodNamespace: g.tag(TagPodNamespace),
			PodName: g.tag(TagPodName)})
	}
	return st
}

func (s *Simulator) sortedGroups() []*group {
	out := make([]*group, 0, len(s.groups))
	for _, g := range s.groups {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out
}

// Groups returns every visible group (oldest first) as DescribeContainerGroups would.
func (s *Simulator) Groups() []ContainerGroup {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.advanceAll(now)
	out := []ContainerGroup{}
	for _, g := range s.sortedGroups() {
		out = append(out, s.renderGroup(g, now, true))
	}
	return out
}

// Group returns one group as DescribeContainerGroups would.
func (s *Simulator) Group(id string) (ContainerGroup, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.advanceAll(now)
	g := s.groups[id]
	if g == nil {
		return ContainerGroup{}, false
	}
	return s.renderGroup(g, now, true), true
}

// ErrNotFound is returned by the Go API for unknown zones and groups.
var ErrNotFound = errors.New("not found")

// SetStock sets a zone's total stock (vCPU and GiB). Lowering it below
// current usage does not evict groups; it only blocks new ones.
func (s *Simulator) SetStock(zoneID string, cpu, memory float64) error {
	if cpu < 0 || memory < 0 {
		return fmt.Errorf("stock must not be negative")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	z := s.zones[zoneID]
	if z == nil {
		return fmt.Errorf("zone %q: %w", zoneID, ErrNotFound)
	}
	z.stockCPU, z.stockMem = cpu, memory
	s.log.Info("zone stock set", "zone", zoneID, "cpu", cpu, "memory", memory)
	return nil
}

// FailGroup simulates a host failure: the group becomes Failed (or
// Expired when status is StatusExpired) now, its live containers are
// killed with exit code 137 and a Warning event is recorded.
func (s *Simulator) FailGroup(id, status string) error {
	return s.failGroup(id, status, "", "")
}

func (s *Simulator) failGroup(id, status, reason, message string) error {
	if status == "" {
		status = StatusFailed
	}
	if status != StatusFailed && status != StatusExpired {
		return fmt.Errorf("status must be %s or %s", StatusFailed, StatusExpired)
	}
	if reason == "" {
		reason, message = "HostFailure", "The underlying host of the instance failed."
		if status == StatusExpired {
			reason, message = "Expired", "The instance has expired and its resources were released."
		}
	}
	if message == "" {
		message = reason
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.advanceAll(now)
	g := s.groups[id]
	if g == nil {
		return fmt.Errorf("container group %q: %w", id, ErrNotFound)
	}
	if isTerminal(g.status) {
		return fmt.Errorf("container group %s is already %s", id, g.status)
	}
	s.finish(g, now, status, reason, message)
	s.log.Info("container group failed by admin", "id", id, "status", status, "reason", reason)
	return nil
}

// Calls returns call counters per action and outcome (an error Code or "OK").
func (s *Simulator) Calls() map[string]map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]map[string]int, len(s.calls))
	for a, m := range s.calls {
		out[a] = make(map[string]int, len(m))
		for k, v := range m {
			out[a][k] = v
		}
	}
	return out
}

// ResetCalls clears the call counters and the request log.
func (s *Simulator) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = map[string]map[string]int{}
	s.requests = nil
}

// Requests returns the recorded requests (newest last, at most 1000),
// optionally only those of one action. Signatures are not recorded.
func (s *Simulator) Requests(action string) []RecordedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []RecordedRequest{}
	for _, r := range s.requests {
		if action == "" || r.Action == action {
			out = append(out, r)
		}
	}
	return out
}

// Reset forgets all groups, image caches, faults, counters, ClientTokens
// and exec sessions, and restores the configured stock and RAM policies.
func (s *Simulator) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups = map[string]*group{}
	s.caches = map[string]*imageCache{}
	s.faults = map[string]*faultRule{}
	s.calls = map[string]map[string]int{}
	s.requests = nil
	s.idem = map[string]*idemEntry{}
	s.execs = map[string]*execSession{}
	s.throttle = newThrottler(s.cfg.QuotaScale)
	s.policies = copyPolicies(s.cfg.Policies)
	for _, z := range s.cfg.Zones {
		s.zones[z.ZoneId].stockCPU, s.zones[z.ZoneId].stockMem = z.StockCpu, z.StockMemory
		for _, v := range z.VSwitches {
			s.vswitches[v.VSwitchId] = newVSwitchState(v, z.ZoneId)
		}
	}
}

// ---- HTTP ----

func (s *Simulator) registerAdmin(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/state", func(w http.ResponseWriter, r *http.Request) {
		s.writeJSON(w, http.StatusOK, s.State())
	})
	mux.HandleFunc("GET /admin/groups", func(w http.ResponseWriter, r *http.Request) {
		s.writeJSON(w, http.StatusOK, s.Groups())
	})
	mux.HandleFunc("GET /admin/groups/{id}", func(w http.ResponseWriter, r *http.Request) {
		g, ok := s.Group(r.PathValue("id"))
		if !ok {
			adminError(w, s, http.StatusNotFound, "container group not found")
			return
		}
		s.writeJSON(w, http.StatusOK, g)
	})
	mux.HandleFunc("POST /admin/groups/{id}/fail", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Status  string `json:"status"`
			Reason  string `json:"reason"`
			Message string `json:"message"`
		}
		if !decodeBody(w, r, s, &body) {
			return
		}
		status := r.URL.Query().Get("status")
		if status == "" {
			status = body.Status
		}
		if err := s.failGroup(r.PathValue("id"), status, body.Reason, body.Message); err != nil {
			code := http.StatusConflict
			if errors.Is(err, ErrNotFound) {
				code = http.StatusNotFound
			} else if strings.HasPrefix(err.Error(), "status must") {
				code = http.StatusBadRequest
			}
			adminError(w, s, code, err.Error())
			return
		}
		g, _ := s.Group(r.PathValue("id"))
		s.writeJSON(w, http.StatusOK, g)
	})
	mux.HandleFunc("PUT /admin/zones/{zoneId}/stock", func(w http.ResponseWriter, r *http.Request) {
		var body *StockAmount
		if !decodeBody(w, r, s, &body) {
			return
		}
		if body == nil {
			adminError(w, s, http.StatusBadRequest, `body {"cpu":N,"memory":N} is required`)
			return
		}
		if err := s.SetStock(r.PathValue("zoneId"), body.Cpu, body.Memory); err != nil {
			code := http.StatusBadRequest
			if errors.Is(err, ErrNotFound) {
				code = http.StatusNotFound
			}
			adminError(w, s, code, err.Error())
			return
		}
		for _, z := range s.State().Zones {
			if z.ZoneId == r.PathValue("zoneId") {
				s.writeJSON(w, http.StatusOK, z)
			}
		}
	})
	mux.HandleFunc("GET /admin/faults", func(w http.ResponseWriter, r *http.Request) {
		s.writeJSON(w, http.StatusOK, map[string]any{"faults": s.Faults()})
	})
	mux.HandleFunc("POST /admin/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Fault
		if !decodeBody(w, r, s, &f) {
			return
		}
		if err := s.InjectFault(f); err != nil {
			adminError(w, s, http.StatusBadRequest, err.Error())
			return
		}
		s.writeJSON(w, http.StatusOK, map[string]any{"faults": s.Faults()})
	})
	mux.HandleFunc("DELETE /admin/faults", func(w http.ResponseWriter, r *http.Request) {
		s.ClearFaults()
		s.writeJSON(w, http.StatusOK, map[string]any{"faults": s.Faults()})
	})
	mux.HandleFunc("DELETE /admin/faults/{action}", func(w http.ResponseWriter, r *http.Request) {
		s.RemoveFault(r.PathValue("action"))
		s.writeJSON(w, http.StatusOK, map[string]any{"faults": s.Faults()})
	})
	mux.HandleFunc("GET /admin/policies", func(w http.ResponseWriter, r *http.Request) {
		s.writeJSON(w, http.StatusOK, map[string]any{"policies": s.Policies()})
	})
	mux.HandleFunc("PUT /admin/policies/{accessKeyId}", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Preset  string   `json:"preset"`
			Name    string   `json:"name"`
			Actions []string `json:"actions"`
		}
		if !decodeBody(w, r, s, &body) {
			return
		}
		p := Policy{Name: body.Name, Actions: body.Actions}
		switch {
		case body.Preset != "" && body.Actions != nil:
			adminError(w, s, http.StatusBadRequest, `give either "preset" or "actions", not both`)
			return
		case body.Preset != "":
			var err error
			if p, err = PolicyByName(body.Preset); err != nil {
				adminError(w, s, http.StatusBadRequest, err.Error())
				return
			}
		case body.Actions == nil:
			adminError(w, s, http.StatusBadRequest, `body {"preset":"documented"|"full"} or {"actions":[...]} is required`)
			return
		case p.Name == "":
			p.Name = "custom"
		}
		if err := s.SetPolicy(r.PathValue("accessKeyId"), p); err != nil {
			adminError(w, s, http.StatusNotFound, err.Error())
			return
		}
		s.writeJSON(w, http.StatusOK, map[string]any{"policies": s.Policies()})
	})
	mux.HandleFunc("GET /admin/calls", func(w http.ResponseWriter, r *http.Request) {
		s.writeJSON(w, http.StatusOK, map[string]any{"calls": s.Calls()})
	})
	mux.HandleFunc("POST /admin/reset-calls", func(w http.ResponseWriter, r *http.Request) {
		s.ResetCalls()
		s.writeJSON(w, http.StatusOK, map[string]any{"calls": s.Calls()})
	})
	mux.HandleFunc("GET /admin/requests", func(w http.ResponseWriter, r *http.Request) {
		s.writeJSON(w, http.StatusOK, map[string]any{"requests": s.Requests(r.URL.Query().Get("action"))})
	})
	mux.HandleFunc("POST /admin/reset", func(w http.ResponseWriter, r *http.Request) {
		s.Reset()
		s.writeJSON(w, http.StatusOK, s.State())
	})
	mux.HandleFunc("/admin/", func(w http.ResponseWriter, r *http.Request) {
		adminError(w, s, http.StatusNotFound, "unknown admin endpoint "+r.Method+" "+r.URL.Path)
	})
}

func adminError(w http.ResponseWriter, s *Simulator, status int, msg string) {
	s.writeJSON(w, status, map[string]string{"error": msg})
}

// decodeBody decodes an optional JSON body; an empty body leaves v as is.
func decodeBody(w http.ResponseWriter, r *http.Request, s *Simulator, v any) bool {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		adminError(w, s, http.StatusBadRequest, "reading body: "+err.Error())
		return false
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return true
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		adminError(w, s, http.StatusBadRequest, "invalid JSON body: "+err.Error())
		return false
	}
	return true
}
