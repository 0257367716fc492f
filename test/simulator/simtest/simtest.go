// Package simtest serves the ECI simulator to a test: an HTTP server on
// 127.0.0.1 and, when asked, a real ECI client (SDK signing and transport)
// with the simulator's default AccessKey. Both stop when the test ends.
package simtest

import (
	"net/http/httptest"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
)

// Start runs a simulator with cfg on a loopback HTTP server until the test
// ends and returns it with its endpoint URL.
func Start(t testing.TB, cfg simulator.Config) (*simulator.Simulator, string) {
	t.Helper()
	sim, err := simulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(func() { srv.Close(); sim.Close() })
	return sim, srv.URL
}

// Client returns an ECI client of the simulator at url: c with its region
// (when empty, the simulator's default), endpoint and credential (the
// simulator's default AccessKey) filled in.
func Client(t testing.TB, url string, c eci.Config) *eci.Client {
	t.Helper()
	cred, err := eci.StaticCredential(simulator.DefaultAccessKeyID, simulator.DefaultAccessKeySecret)
	if err != nil {
		t.Fatal(err)
	}
	if c.RegionId == "" {
		c.RegionId = simulator.DefaultRegionID
	}
	c.Endpoint, c.Credential = url, cred
	client, err := eci.NewClient(c)
	if err != nil {
		t.Fatal(err)
	}
	return client
}
