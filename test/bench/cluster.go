package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/translate"
	"github.com/ack-virtual-node/ack-virtual-node/test/controlplane"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
	"k8s.io/client-go/kubernetes"
)

// Identities the measured components use, so the apiserver's audit log can
// attribute every request to one of them.
const (
	vnodeUser = "bench:virtual-node"
	kwokUser  = "bench:kwok"
)

// cluster is the control plane and the simulator shared by every target.
type cluster struct {
	cp        *controlplane.ControlPlane
	kube      kubernetes.Interface
	sim       *simulator.Simulator
	simCfg    simulator.Config
	simURL    string
	simSrv    *http.Server
	creates   *createTimes // when each pod's first create reached the cloud
	auditPath string
	dir       string
	keep      bool
	log       io.Writer
}

func startCluster(ctx context.Context, opts Options) (*cluster, error) {
	dir, err := os.MkdirTemp("", "vnode-bench-")
	if err != nil {
		return nil, err
	}
	c := &cluster{dir: dir, auditPath: filepath.Join(dir, "audit.log"), keep: opts.KeepDir, log: opts.Log}
	// Only the measured components are audited, at Metadata level: enough
	// to count their requests by verb and resource without slowing the
	// apiserver for everyone else.
	policy := fmt.Sprintf(`apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  users: [%q, %q]
- level: None
`, vnodeUser, kwokUser)
	policyPath := filepath.Join(dir, "audit-policy.yaml")
	if err := os.WriteFile(policyPath, []byte(policy), 0o600); err != nil {
		return nil, err
	}
	c.cp, err = controlplane.Start(ctx, controlplane.Options{
		Dir: filepath.Join(dir, "cp"),
		ExtraAPIServerArgs: []string{
			"--audit-policy-file=" + policyPath,
			"--audit-log-path=" + c.auditPath,
			"--audit-log-format=json",
			"--audit-log-mode=batch",
			// The default buffer (10,000 events) drops events in a large
			// burst, and the per-pod request counts with them.
			"--audit-log-batch-buffer-size=200000",
			// The defaults (400/200 in flight) throttle a 10,000-pod burst
			// at the apiserver for both targets alike; raise them so the
			// targets themselves are what is measured.
			"--max-requests-inflight=1000",
			"--max-mutating-requests-inflight=500",
		},
	})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	c.kube = c.cp.Clientset()
	if err := c.startSimulator(opts); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

func (c *cluster) startSimulator(opts Options) error {
	cfg := simulator.DefaultConfig()
	cfg.StartDelay = opts.SimLatency
	cfg.QuotaScale = opts.QuotaScale
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	// Each zone gets room for every pod of the run: stock and a /16 per
	// vSwitch (the defaults hold a few hundred pods).
	for i := range cfg.Zones {
		cfg.Zones[i].StockCpu = 1e6
		cfg.Zones[i].StockMemory = 4e6
		for j := range cfg.Zones[i].VSwitches {
			cfg.Zones[i].VSwitches[j].CidrBlock = fmt.Sprintf("10.%d.0.0/16", 10*i+j)
		}
	}
	sim, err := simulator.New(cfg)
	if err != nil {
		return fmt.Errorf("simulator: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		sim.Close()
		return err
	}
	c.sim, c.simCfg = sim, cfg
	c.simURL = "http://" + ln.Addr().String()
	c.creates = &createTimes{at: map[string]time.Time{}}
	c.simSrv = &http.Server{Handler: c.creates.wrap(sim.Handler()), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = c.simSrv.Serve(ln) }()
	return nil
}

func (c *cluster) stop() {
	if c.simSrv != nil {
		_ = c.simSrv.Close()
		c.sim.Close()
	}
	if c.cp != nil {
		c.cp.Stop()
	}
	if c.keep {
		logf(c.log, "logs kept in %s", c.dir)
		return
	}
	_ = os.RemoveAll(c.dir)
}

// auditCounts counts the audited requests of user by "verb resource"
// (with subresource), reading the whole log: batch mode flushes within a
// second, so callers wait briefly after the workload first. A non-zero
// from or to keeps only the requests received within [from, to].
func (c *cluster) auditCounts(user string, from, to time.Time) (map[string]int, int, error) {
	f, err := os.Open(c.auditPath)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	counts := map[string]int{}
	total := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev struct {
			User      struct{ Username string } `json:"user"`
			Verb      string                    `json:"verb"`
			Received  time.Time                 `json:"requestReceivedTimestamp"`
			ObjectRef *struct {
				Resource    string `json:"resource"`
				Subresource string `json:"subresource"`
			} `json:"objectRef"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.User.Username != user {
			continue
		}
		if (!from.IsZero() && ev.Received.Before(from)) || (!to.IsZero() && ev.Received.After(to)) {
			continue
		}
		what := "nonresource"
		if ev.ObjectRef != nil {
			what = ev.ObjectRef.Resource
			if ev.ObjectRef.Subresource != "" {
				what += "/" + ev.ObjectRef.Subresource
			}
		}
		counts[ev.Verb+" "+what]++
		total++
	}
	return counts, total, sc.Err()
}

// procField returns the value after "name:" on the first matching line of
// a /proc file.
func procField(text, name string) string {
	for _, line := range strings.Split(text, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// createTimes records when the simulated cloud first received each pod's
// CreateContainerGroup (by its PodUID tag): the moment the node is done
// with its queue and its preparation, which splits bound→Running into the
// node's side and the cloud's.
type createTimes struct {
	mu sync.Mutex
	at map[string]time.Time
}

func (c *createTimes) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// ParseForm is idempotent: the simulator's own call sees the
		// same parameters.
		if err := r.ParseForm(); err == nil && r.Form.Get("Action") == "CreateContainerGroup" {
			now := time.Now()
			for i := 1; ; i++ {
				k := r.Form.Get(fmt.Sprintf("Tag.%d.Key", i))
				if k == "" {
					break
				}
				if k == translate.TagPodUID {
					c.record(r.Form.Get(fmt.Sprintf("Tag.%d.Value", i)), now)
				}
			}
		}
		h.ServeHTTP(w, r)
	})
}

func (c *createTimes) record(uid string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.at[uid]; !ok {
		c.at[uid] = at
	}
}

// snapshot returns a copy of the times recorded so far.
func (c *createTimes) snapshot() map[string]time.Time {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]time.Time, len(c.at))
	for k, v := range c.at {
		out[k] = v
	}
	return out
}
