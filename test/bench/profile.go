package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// profiler collects what the virtual node itself says about a run, from
// its metrics port: a CPU profile taken while pods are being created, a
// heap profile and the Prometheus metrics at the end. The files go next to
// the results so a finding can be traced to the code that caused it.
type profiler struct {
	addr     string // host:port of the metrics server, PPROF_ENABLED
	dir      string
	prefix   string
	seconds  int
	log      io.Writer
	cpuDone  chan struct{}
	heapDone chan struct{}
	stop     chan struct{}
	mu       sync.Mutex
	// Files written, for the report.
	files []string
}

func newProfiler(addr, dir, prefix string, seconds int, log io.Writer) *profiler {
	return &profiler{addr: addr, dir: dir, prefix: prefix, seconds: seconds, log: log, cpuDone: make(chan struct{}), heapDone: make(chan struct{}), stop: make(chan struct{})}
}

// cpuWhen takes a CPU profile once started reports true (the workload is
// under way), so the profile covers the busy part of the run.
func (p *profiler) cpuWhen(ctx context.Context, started func() bool) {
	go func() {
		defer close(p.cpuDone)
		if p.seconds <= 0 {
			return
		}
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for !started() {
			select {
			case <-ctx.Done():
				return
			case <-p.stop:
				return
			case <-t.C:
			}
		}
		if err := p.fetch(ctx, "/debug/pprof/profile?seconds="+strconv.Itoa(p.seconds), "cpu.pprof", time.Duration(p.seconds+30)*time.Second); err != nil {
			logf(p.log, "cpu profile: %v", err)
		}
	}()
}

// heapWhen saves a heap profile once peak reports true (every pod runs),
// which is when the node holds the most.
func (p *profiler) heapWhen(ctx context.Context, peak func() bool) {
	go func() {
		defer close(p.heapDone)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
	wait:
		for !peak() {
			select {
			case <-ctx.Done():
				return
			case <-p.stop:
				// The peak never came (churn, or a failed run): the
				// end of the run is the next best moment.
				break wait
			case <-t.C:
			}
		}
		if err := p.fetch(ctx, "/debug/pprof/heap", "heap.pprof", 30*time.Second); err != nil {
			logf(p.log, "heap profile: %v", err)
		}
	}()
}

// finish waits for the profiles and saves the metrics.
func (p *profiler) finish(ctx context.Context) {
	close(p.stop)
	for _, done := range []chan struct{}{p.cpuDone, p.heapDone} {
		select {
		case <-done:
		case <-ctx.Done():
		}
	}
	if err := p.fetch(ctx, "/metrics", "metrics.txt", 30*time.Second); err != nil {
		logf(p.log, "metrics: %v", err)
	}
}

func (p *profiler) fetch(ctx context.Context, path, name string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return err
	}
	file := filepath.Join(p.dir, p.prefix+"-"+name)
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("GET %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	p.mu.Lock()
	p.files = append(p.files, file)
	p.mu.Unlock()
	return nil
}

// path returns the saved record whose name ends with name, "" if none.
func (p *profiler) path(name string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.files {
		if strings.HasSuffix(f, "-"+name) {
			return f
		}
	}
	return ""
}
