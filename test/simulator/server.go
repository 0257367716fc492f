package simulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// APIVersion is the only OpenAPI version served.
const APIVersion = "2018-08-08"

// maxRecordedRequests is the default bound of the request log kept for
// Requests() (Config.RequestLog).
const maxRecordedRequests = 1000

// idempotencyTTL is how long a ClientToken result is remembered.
const idempotencyTTL = 24 * time.Hour

// Simulator is an in-memory ECI region. Create it with New, serve
// Handler(), and Close it when done. All methods are safe for concurrent use.
type Simulator struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	groups    map[string]*group
	seq       int64
	zones     map[string]*zoneState
	zoneOrder []string
	vswitches map[string]*vswitchState
	sgs       map[string]bool
	throttle  *throttler
	faults    map[string]*faultRule
	calls     map[string]map[string]int
	requests  []RecordedRequest
	idem      map[string]*idemEntry
	nonces    map[string]time.Time
	// noncesPruned is when expired nonces were last swept.
	noncesPruned time.Time
	rng          *rand.Rand
	caches       map[string]*imageCache
	execs        map[string]*execSession
	// policies are the RAM policies of AccessKeys (none: full access).
	policies map[string]Policy

	closed  bool
	closeCh chan struct{}
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

type idemEntry struct {
	fingerprint string
	response    map[string]json.RawMessage
	at          time.Time
}

// RecordedRequest is one OpenAPI call as seen by the simulator.
type RecordedRequest struct {
	Time       time.Time         `json:"time"`
	Action     string            `json:"action"`
	Params     map[string]string `json:"params"`
	Code       string            `json:"code"`
	HTTPStatus int               `json:"httpStatus"`
	RequestId  string            `json:"requestId"`
}

// New validates cfg, fills defaults and returns a ready simulator.
func New(cfg Config) (*Simulator, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	s := &Simulator{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "eci-simulator"),
		groups:    map[string]*group{},
		zones:     map[string]*zoneState{},
		vswitches: map[string]*vswitchState{},
		sgs:       map[string]bool{},
		throttle:  newThrottler(cfg.QuotaScale),
		faults:    map[string]*faultRule{},
		calls:     map[string]map[string]int{},
		idem:      map[string]*idemEntry{},
		nonces:    map[string]time.Time{},
		rng:       rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		caches:    map[string]*imageCache{},
		execs:     map[string]*execSession{},
		policies:  copyPolicies(cfg.Policies),
		closeCh:   make(chan struct{}),
		conns:     map[net.Conn]struct{}{},
	}
	for _, z := range cfg.Zones {
		s.zones[z.ZoneId] = &zoneState{cfg: z, stockCPU: z.StockCpu, stockMem: z.StockMemory}
		s.zoneOrder = append(s.zoneOrder, z.ZoneId)
		for _, v := range z.VSwitches {
			s.vswitches[v.VSwitchId] = newVSwitchState(v, z.ZoneId)
		}
	}
	for _, sg := range cfg.SecurityGroups {
		s.sgs[sg] = true
	}
	return s, nil
}

// Config returns the effective configuration (with defaults applied).
func (s *Simulator) Config() Config { return s.cfg }

// Handler serves the OpenAPI at "/", the admin API under "/admin/" and
// exec streams under "/exec-ws/" (WebSocket) and "/exec/" (plain HTTP).
func (s *Simulator) Handler() http.Handler {
	mux := http.NewServeMux()
	s.registerAdmin(mux)
	mux.HandleFunc("/exec-ws/", s.serveExecWS)
	mux.HandleFunc("/exec/", s.serveExecHTTP)
	mux.HandleFunc("/", s.serveAPI)
	return mux
}

// Close ends every exec stream and stops their goroutines. The handler
// keeps answering afterwards (so an http.Server can drain), but no new
// exec streams are accepted.
func (s *Simulator) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.closeCh)
		for c := range s.conns {
			_ = c.Close()
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// now reads the simulated clock.
func (s *Simulator) now() time.Time { return s.cfg.Clock.Now() }

// randomID returns prefix + n lowercase alphanumerics. Caller holds s.mu.
func (s *Simulator) randomID(prefix string, n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[s.rng.IntN(len(alphabet))]
	}
	return prefix + string(b)
}

// newRequestID returns an uppercase UUID-shaped id like the cloud's.
func (s *Simulator) newRequestID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, b := s.rng.Uint64(), s.rng.Uint64()
	return strings.ToUpper(fmt.Sprintf("%08x-%04x-%04x-%04x-%012x",
		uint32(a>>32), uint16(a>>16), uint16(a), uint16(b>>48), b&0xffffffffffff))
}

// reqCtx is what an operation handler sees.
type reqCtx struct {
	action    string
	p         params
	raw       map[string]string
	now       time.Time
	requestID string
	host      string
	secure    bool
}

// response is an operation result; RequestId is added by the server.
type response map[string]any

type handlerFunc func(s *Simulator, rc *reqCtx) (response, *apiError)

// operations maps every supported Action to its handler.
var operations = map[string]handlerFunc{
	"CreateContainerGroup":              (*Simulator).opCreate,
	"DescribeContainerGroups":           (*Simulator).opDescribe,
	"DescribeContainerGroupStatus":      (*Simulator).opDescribeStatus,
	"DeleteContainerGroup":              (*Simulator).opDelete,
	"RestartContainerGroup":             (*Simulator).opRestart,
	"UpdateContainerGroup":              (*Simulator).opUpdate,
	"DescribeContainerLog":              (*Simulator).opLog,
	"ExecContainerCommand":              (*Simulator).opExec,
	"DescribeContainerGroupMetric":      (*Simulator).opMetric,
	"DescribeMultiContainerGroupMetric": (*Simulator).opMultiMetric,
	"CreateImageCache":                  (*Simulator).opCreateImageCache,
	"DescribeImageCaches":               (*Simulator).opDescribeImageCaches,
	"DeleteImageCache":                  (*Simulator).opDeleteImageCache,
}

// idempotentActions honour ClientToken.
var idempotentActions = map[string]bool{
	"CreateContainerGroup": true, "DeleteContainerGroup": true, "RestartContainerGroup": true,
	"UpdateContainerGroup": true, "CreateImageCache": true,
}

// fingerprintIgnored are parameters that legitimately differ between
// retries of the same request.
var fingerprintIgnored = map[string]bool{
	"Signature": true, "SignatureNonce": true, "Timestamp": true, "AccessKeyId": true,
	"SecurityToken": true, "SignatureMethod": true, "SignatureVersion": true,
	"SignatureType": true, "Format": true, "BearerToken": true,
}

func fingerprint(raw map[string]string) string {
	keys := make([]string, 0, len(raw))
	for k := range raw {
		if !fingerprintIgnored[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(raw[k])
		b.WriteByte('\n')
	}
	return b.String()
}

// serveAPI handles one OpenAPI request end to end.
func (s *Simulator) serveAPI(w http.ResponseWriter, r *http.Request) {
	started := time.Now()
	requestID := s.newRequestID()
	raw, action, resp, aerr := s.handleAPI(r, requestID)
	status := http.StatusOK
	outcome := "OK"
	if aerr != nil {
		status, outcome = aerr.Status, aerr.Code
		body := map[string]any{
			"RequestId": requestID,
			"HostId":    "eci." + s.cfg.RegionId + ".aliyuncs.com",
			"Code":      aerr.Code,
			"Message":   aerr.Message,
			"Recommend": fmt.Sprintf("https://api.aliyun.com/troubleshoot?q=%s&product=Eci&requestId=%s", aerr.Code, requestID),
		}
		if aerr.Detail != nil {
			body["AccessDeniedDetail"] = aerr.Detail
		}
		s.writeJSON(w, status, body)
	} else {
		s.writeJSON(w, status, resp)
	}
	s.record(raw, action, outcome, status, requestID)
	lvl := slog.LevelInfo
	if strings.HasPrefix(action, "Describe") && aerr == nil {
		lvl = slog.LevelDebug
	}
	s.log.Log(r.Context(), lvl, "openapi call", "action", action, "outcome", outcome, "status", status,
		"requestId", requestID, "latency", time.Since(started))
}

func (s *Simulator) handleAPI(r *http.Request, requestID string) (map[string]string, string, any, *apiError) {
	if r.URL.Path != "/" {
		return nil, "", nil, newError(http.StatusNotFound, CodeInvalidAction, "Specified api is not found, please check your url and method.")
	}
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		return nil, "", nil, newError(http.StatusMethodNotAllowed, CodeInvalidParameter, "HTTP method %s is not supported; use GET or POST.", r.Method)
	}
	r.Body = http.MaxBytesReader(nil, r.Body, 10<<20)
	if err := r.ParseForm(); err != nil {
		return nil, "", nil, errInvalid("body", "cannot parse the form body: %v", err)
	}
	raw := make(map[string]string, len(r.Form))
	for k, v := range r.Form {
		if len(v) > 0 {
			raw[k] = v[0]
		}
	}
	action := raw["Action"]
	if action == "" {
		return raw, "", nil, errMissing("Action")
	}
	if raw["Version"] == "" {
		return raw, action, nil, errMissing("Version")
	}
	if raw["Version"] != APIVersion {
		return raw, action, nil, newError(http.StatusBadRequest, CodeInvalidVersion,
			"Specified parameter Version %q is not valid; the only version is %s.", raw["Version"], APIVersion)
	}
	op, ok := operations[action]
	if !ok {
		return raw, action, nil, newError(http.StatusNotFound, CodeInvalidAction,
			"Specified api %q is not found, please check your url and method.", action)
	}

	s.mu.Lock()
	aerr := s.verifySignature(r.Method, raw)
	if aerr == nil {
		aerr = s.checkPolicy(raw["AccessKeyId"], action)
	}
	if aerr == nil {
		aerr = s.checkRegion(raw)
	}
	if aerr == nil {
		aerr = checkPublished(action, raw)
	}
	if aerr == nil && !s.throttle.allow(action, s.now()) {
		aerr = newError(http.StatusBadRequest, CodeThrottling, msgThrottling)
	}
	var fault faultDecision
	if aerr == nil {
		fault = s.decideFault(action)
	}
	s.mu.Unlock()
	if aerr != nil {
		return raw, action, nil, aerr
	}
	if fault.latency > 0 {
		select {
		case <-time.After(fault.latency):
		case <-r.Context().Done():
		case <-s.closeCh:
		}
	}
	if fault.err != nil && !fault.afterSuccess {
		return raw, action, nil, fault.err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.advanceAll(now)
	rc := &reqCtx{action: action, p: newParams(raw), raw: raw, now: now, requestID: requestID,
		host: r.Host, secure: r.TLS != nil}
	resp, aerr := s.runIdempotent(op, rc)
	if aerr != nil {
		return raw, action, nil, aerr
	}
	if fault.err != nil {
		// The operation took effect but the client sees an error, like a
		// response lost after the cloud committed the change.
		return raw, action, nil, fault.err
	}
	return raw, action, resp, nil
}

// checkRegion validates RegionId (required on every ECI operation).
func (s *Simulator) checkRegion(raw map[string]string) *apiError {
	region := raw["RegionId"]
	if region == "" {
		return errMissing("RegionId")
	}
	if region != s.cfg.RegionId {
		return newError(http.StatusNotFound, CodeInvalidRegionID,
			"The specified RegionId %q does not exist; this endpoint serves %s.", region, s.cfg.RegionId)
	}
	return nil
}

// runIdempotent runs op, honouring ClientToken for idempotent actions.
// Caller holds s.mu.
func (s *Simulator) runIdempotent(op handlerFunc, rc *reqCtx) (any, *apiError) {
	token := rc.raw["ClientToken"]
	if token != "" {
		if len(token) > maxClientToken {
			return nil, errInvalid("ClientToken", "must be at most %d characters", maxClientToken)
		}
		for _, ch := range token {
			if ch > 127 {
				return nil, errInvalid("ClientToken", "must be ASCII")
			}
		}
	}
	var key, fp string
	if token != "" && idempotentActions[rc.action] {
		for k, e := range s.idem {
			if rc.now.Sub(e.at) > idempotencyTTL {
				delete(s.idem, k)
			}
		}
		key = rc.action + "\x00" + token
		fp = fingerprint(rc.raw)
		if e, ok := s.idem[key]; ok {
			if e.fingerprint != fp {
				return nil, newError(http.StatusBadRequest, CodeIdempotentParameterMismatch,
					"The request uses the same client token as a previous, but non-identical request.")
			}
			out := make(map[string]json.RawMessage, len(e.response)+1)
			for k, v := range e.response {
				out[k] = v
			}
			out["RequestId"], _ = json.Marshal(rc.requestID)
			return out, nil
		}
	}
	resp, aerr := op(s, rc)
	if aerr != nil {
		return nil, aerr
	}
	if resp == nil {
		resp = response{}
	}
	resp["RequestId"] = rc.requestID
	if key != "" {
		stored := map[string]json.RawMessage{}
		for k, v := range resp {
			if k != "RequestId" {
				stored[k], _ = json.Marshal(v)
			}
		}
		s.idem[key] = &idemEntry{fingerprint: fp, response: stored, at: rc.now}
	}
	return resp, nil
}

func (s *Simulator) writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil && !errors.Is(err, context.Canceled) {
		s.log.Warn("writing response failed", "err", err)
	}
}

// record counts a call and appends it to the request log.
func (s *Simulator) record(raw map[string]string, action, outcome string, status int, requestID string) {
	if action == "" {
		action = "(none)"
	}
	params := make(map[string]string, len(raw))
	for k, v := range raw {
		if k != "Signature" {
			params[k] = v
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls[action] == nil {
		s.calls[action] = map[string]int{}
	}
	s.calls[action][outcome]++
	s.requests = append(s.requests, RecordedRequest{Time: s.now(), Action: action, Params: params,
		Code: outcome, HTTPStatus: status, RequestId: requestID})
	if len(s.requests) > s.cfg.RequestLog {
		s.requests = append([]RecordedRequest(nil), s.requests[len(s.requests)-s.cfg.RequestLog:]...)
	}
}

// fmtTime formats like the cloud: RFC 3339 UTC with second precision.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}
