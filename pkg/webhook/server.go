// Package webhook is virtual-node-affinity-admission-controller: a mutating
// admission webhook that sends pods to the virtual node. Pods labelled
// alibabacloud.com/eci=true (or eci=true), pods in namespaces labelled
// alibabacloud.com/eci=true (or eci=true, or
// virtual-node-affinity-injection=enabled), and pods matching an eci-profile
// selector get nodeSelector type=virtual-kubelet and a toleration of the
// virtual-node taint; selector matches also get the selector's annotations
// and labels.
//
// The webhook manages its own TLS: a CA and serving certificate in a Secret
// (CertManager), renewed before expiry and reloaded without a restart, and
// its own MutatingWebhookConfiguration (EnsureConfiguration), with
// failurePolicy Ignore so that pods are still created when it is down.
package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/kubeconfig"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/profile"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// Options are the inputs of a Server.
type Options struct {
	// Config is the validated configuration.
	Config *Config
	// RESTConfig overrides Config.Kubeconfig (tests).
	RESTConfig *rest.Config
	// Now is the certificate clock; nil means time.Now.
	Now func() time.Time
}

// Server is one running webhook: TLS endpoint, certificate manager,
// profile store and configuration reconciler.
type Server struct {
	cfg      *Config
	kube     kubernetes.Interface
	certs    *CertManager
	store    *profile.Store
	registry *prometheus.Registry
	metrics  *Metrics
	ready    chan struct{}

	readyOnce sync.Once
}

// New builds a Server; nothing runs until Run.
func New(opts Options) (*Server, error) {
	cfg := opts.Config
	if cfg == nil {
		return nil, errors.New("webhook: no configuration")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	restCfg := opts.RESTConfig
	if restCfg == nil {
		var err error
		if restCfg, err = kubeconfig.Load(cfg.Kubeconfig); err != nil {
			return nil, err
		}
	}
	kube, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	certs, err := NewCertManager(CertOptions{
		Kube: kube, Namespace: cfg.Namespace, SecretName: cfg.CertSecretName, Hosts: cfg.Hosts(),
		CAValidity: cfg.CAValidity, CertValidity: cfg.CertValidity, RenewBefore: cfg.RenewBefore, Now: opts.Now,
	})
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Server{
		cfg: cfg, kube: kube, certs: certs, registry: reg, metrics: NewMetrics(reg),
		store: profile.NewStore(profile.StoreOptions{
			Kube: kube, Namespace: cfg.ProfileNamespace, Name: cfg.ProfileName, Component: component,
		}),
		ready: make(chan struct{}),
	}, nil
}

// Run serves until ctx ends, then shuts down gracefully. It returns nil on
// a clean shutdown.
func Run(ctx context.Context, opts Options) error {
	s, err := New(opts)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}

// Registry is the server's metrics registry.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// Profile is the server's eci-profile store.
func (s *Server) Profile() *profile.Store { return s.store }

// Certs is the server's certificate manager.
func (s *Server) Certs() *CertManager { return s.certs }

// Ready is closed once the server accepts requests and its webhook
// configuration is in place.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Run starts everything, serves until ctx ends, then shuts down. The
// MutatingWebhookConfiguration is deliberately left in place on shutdown:
// during a rolling update the next replica serves it, and when none does,
// failurePolicy Ignore admits pods unchanged.
func (s *Server) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	logger := klog.FromContext(ctx).WithValues("component", component)

	factory := informers.NewSharedInformerFactory(s.kube, 0)
	nsInformer := factory.Core().V1().Namespaces()
	nsLister := nsInformer.Lister()
	nsSynced := nsInformer.Informer().HasSynced
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if err := s.store.Start(ctx); err != nil {
		return err
	}
	if !cache.WaitForCacheSync(ctx.Done(), nsSynced) {
		return fmt.Errorf("list namespaces: %w", context.Cause(ctx))
	}
	if _, err := s.certs.Ensure(ctx); err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.Handle(s.cfg.Path(), &Handler{
		Namespaces: func(ctx context.Context, name string, fresh bool) (map[string]string, error) {
			if !fresh {
				ns, err := nsLister.Get(name)
				if err == nil {
					return ns.Labels, nil
				}
				if !apierrors.IsNotFound(err) {
					return nil, err
				}
				// Not cached yet (created a moment ago): read it.
			}
			ns, err := s.kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return nil, fmt.Errorf("read namespace %s: %w", name, err)
			}
			return ns.Labels, nil
		},
		Profile: s.store.Current,
		Metrics: s.metrics,
	})
	mux.HandleFunc("/healthz", s.health)
	mux.HandleFunc("/readyz", s.health)
	ln, err := net.Listen("tcp", s.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("WEBHOOK_LISTEN_ADDR %s: %w", s.cfg.ListenAddr, err)
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.certs.GetCertificate},
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.ServeTLS(ln, "", "") }()
	logger.Info("serving admission requests", "addr", ln.Addr().String(), "path", s.cfg.Path(), "certNotAfter", s.certs.NotAfter())

	var metricsSrv *http.Server
	if s.cfg.MetricsAddr != "" {
		metricsSrv = s.serveMetrics(logger)
	}

	if err := s.reconcile(ctx); err != nil {
		shutdown(srv, metricsSrv)
		return err
	}
	s.readyOnce.Do(func() { close(s.ready) })
	logger.Info("webhook ready", "configuration", s.cfg.ConfigurationName, "selectors", len(s.store.Current().Selectors))

	ticker := time.NewTicker(s.cfg.ResyncInterval)
	defer ticker.Stop()
	for {
		changed := s.store.Changed()
		select {
		case <-ctx.Done():
			logger.Info("shutting down")
			shutdown(srv, metricsSrv)
			logger.Info("stopped")
			return nil
		case err := <-serveErr:
			shutdown(srv, metricsSrv)
			return fmt.Errorf("admission server: %w", err)
		case <-changed:
		case <-ticker.C:
		}
		// Failures are retried at the next tick; the running server keeps
		// its last certificate meanwhile.
		if err := s.reconcile(ctx); err != nil && ctx.Err() == nil {
			logger.Error(err, "reconcile certificate and webhook configuration; retrying", "in", s.cfg.ResyncInterval)
		}
	}
}

// reconcile renews the certificate when due and brings the webhook
// configuration in line with the CA bundle and the profile's selectors.
func (s *Server) reconcile(ctx context.Context) error {
	if _, err := s.certs.Ensure(ctx); err != nil {
		return err
	}
	return EnsureConfiguration(ctx, s.kube, SpecFor(s.cfg, s.certs.CABundle(), s.store.Current()))
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	select {
	case <-s.ready:
		_, _ = w.Write([]byte("ok"))
	default:
		http.Error(w, "not ready", http.StatusServiceUnavailable)
	}
}

func (s *Server) serveMetrics(logger klog.Logger) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", s.health)
	mux.HandleFunc("/readyz", s.health)
	srv := &http.Server{Addr: s.cfg.MetricsAddr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error(err, "metrics server stopped", "addr", s.cfg.MetricsAddr)
		}
	}()
	return srv
}

// shutdown lets in-flight admission requests finish (they take
// milliseconds; the apiserver gives up after TimeoutSeconds anyway).
func shutdown(servers ...*http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, srv := range servers {
		if srv != nil {
			_ = srv.Shutdown(ctx)
		}
	}
}
