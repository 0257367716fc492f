// Command eci-simulator serves a simulated Alibaba Cloud ECI region (the
// ECI OpenAPI plus an admin API) for demos and integration tests. It only
// wires flags to simulator.Config; see package test/simulator for behaviour.
//
// On start it prints "listening on http://ADDR" to stdout (and writes ADDR
// to -addr-file if given) so scripts can discover a port chosen with :0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/test/simulator"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "eci-simulator:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (port 0 picks a free port)")
	addrFile := flag.String("addr-file", "", "if set, write the actual listen address (host:port) to this file")
	region := flag.String("region", simulator.DefaultRegionID, "region id served; zones are <region>-h/-i/-j")
	startDelay := flag.Duration("start-delay", 0, "time a container group stays Pending before Running")
	quotaScale := flag.Float64("quota-scale", 1, "multiplier for the published API rate quotas (0 disables throttling)")
	accessKeyID := flag.String("access-key-id", simulator.DefaultAccessKeyID, "accepted AccessKeyId")
	accessKeySecret := flag.String("access-key-secret", simulator.DefaultAccessKeySecret, "AccessKeySecret of -access-key-id")
	retention := flag.Duration("retention", time.Hour, "how long terminal container groups stay visible")
	policy := flag.String("policy", "full", "RAM policy of -access-key-id: full (AliyunECIFullAccess), documented (the 15 actions of the product documentation's custom policy) or a comma-separated list of actions")
	seed := flag.Uint64("seed", 0, "random seed for ids and fault sampling (0 = random)")
	logLevel := flag.String("log-level", "info", "log level: debug, info, warn or error")
	flag.Parse()

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("bad -log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	cfg := simulator.DefaultConfigForRegion(*region)
	cfg.AccessKeys = map[string]string{*accessKeyID: *accessKeySecret}
	pol, err := simulator.ParsePolicy(*policy)
	if err != nil {
		return fmt.Errorf("bad -policy: %w", err)
	}
	cfg.Policies = map[string]simulator.Policy{*accessKeyID: pol}
	cfg.StartDelay = *startDelay
	cfg.QuotaScale = *quotaScale
	cfg.Retention = *retention
	cfg.Seed = *seed
	cfg.Logger = logger
	sim, err := simulator.New(cfg)
	if err != nil {
		return err
	}
	defer sim.Close()

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	if *addrFile != "" {
		if err := os.WriteFile(*addrFile, []byte(addr+"\n"), 0o644); err != nil {
			_ = ln.Close()
			return fmt.Errorf("writing -addr-file: %w", err)
		}
	}
	srv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("listening on http://%s\n", addr)
	logger.Info("eci simulator started", "addr", addr, "region", cfg.RegionId, "startDelay", cfg.StartDelay,
		"quotaScale", cfg.QuotaScale, "policy", pol.Name)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	// Close the simulator first: it ends hijacked exec streams, which
	// http.Server.Shutdown does not track.
	sim.Close()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
