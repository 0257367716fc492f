package translate

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1listers "k8s.io/client-go/listers/core/v1"
)

// ClusterDomain is the DNS domain of Services in the cluster.
const ClusterDomain = "cluster.local"

// SetListers lets the translator read ConfigMaps, Secrets and Services from
// the virtual-kubelet informer caches instead of the apiserver.
func (p *Translator) SetListers(cm corev1listers.ConfigMapLister, sec corev1listers.SecretLister, svc corev1listers.ServiceLister) {
	p.mu.Lock()
	p.configMaps, p.secrets, p.services = cm, sec, svc
	p.mu.Unlock()
}

// clusterDNS caches the cluster DNS Service address; a lookup per pod
// would cost an apiserver call for every create.
type clusterDNS struct {
	mu      sync.Mutex
	ip      string
	fetched time.Time
}

const clusterDNSTTL = time.Minute

func (p *Translator) clusterDNSIP(ctx context.Context) string {
	c := &p.dns
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.fetched) < clusterDNSTTL {
		return c.ip
	}
	c.ip = ""
	svc, err := p.opts.Kube.CoreV1().Services(metav1.NamespaceSystem).Get(ctx, "kube-dns", metav1.GetOptions{})
	if err == nil && svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != corev1.ClusterIPNone {
		c.ip = svc.Spec.ClusterIP
	}
	c.fetched = time.Now()
	return c.ip
}

// podLevel maps DNS, host aliases, sysctls, the pod's default runAsUser and
// image pull secrets.
func (p *Translator) podLevel(ctx context.Context, pod *corev1.Pod, tr *Translation) error {
	req := tr.Req
	if err := p.buildDNS(ctx, pod, tr); err != nil {
		return err
	}
	for _, h := range pod.Spec.HostAliases {
		req.HostAliases = append(req.HostAliases, eci.HostAlias{IP: h.IP, Hostnames: h.Hostnames})
	}
	if sc := pod.Spec.SecurityContext; sc != nil {
		for _, s := range sc.Sysctls {
			req.Sysctls = append(req.Sysctls, eci.Sysctl{Name: s.Name, Value: s.Value})
		}
		if sc.RunAsUser != nil {
			for _, cs := range [][]eci.Container{req.InitContainers, req.Containers} {
				for i := range cs {
					if cs[i].SecurityContext == nil {
						cs[i].SecurityContext = &eci.ContainerSecurityContext{}
					}
					if cs[i].SecurityContext.RunAsUser == nil {
						cs[i].SecurityContext.RunAsUser = sc.RunAsUser
					}
				}
			}
		}
	}
	for i, ref := range pod.Spec.ImagePullSecrets {
		creds, err := p.registryCredentials(ctx, pod.Namespace, ref.Name)
		if err != nil {
			return fmt.Errorf("spec.imagePullSecrets[%d] (%s): %w", i, ref.Name, err)
		}
		req.ImageRegistryCredentials = append(req.ImageRegistryCredentials, creds...)
	}
	return nil
}

// buildDNS gives ClusterFirst pods the cluster DNS Service as resolver, as
// the kubelet does; Default uses the VPC resolver; None uses dnsConfig only.
func (p *Translator) buildDNS(ctx context.Context, pod *corev1.Pod, tr *Translation) error {
	req := tr.Req
	cfg := &eci.DNSConfig{}
	switch pod.Spec.DNSPolicy {
	case corev1.DNSDefault:
		req.DnsPolicy = "Default"
	case corev1.DNSNone:
		req.DnsPolicy = "None"
		if pod.Spec.DNSConfig == nil {
			return &InvalidPodError{Field: "spec.dnsConfig", Reason: "is required with dnsPolicy None", Fix: "set nameservers in spec.dnsConfig"}
		}
	default: // ClusterFirst, ClusterFirstWithHostNet
		if !p.opts.KubeProxy {
			req.DnsPolicy = "Default"
			tr.Notes = append(tr.Notes, "dnsPolicy ClusterFirst: ECI_KUBE_PROXY is false, so ClusterIP Services (the cluster DNS too) are unreachable; the pod uses the VPC resolver")
		} else if ip := p.clusterDNSIP(ctx); ip != "" {
			req.DnsPolicy = "None"
			cfg.NameServers = []string{ip}
			cfg.Searches = []string{pod.Namespace + ".svc." + ClusterDomain, "svc." + ClusterDomain, ClusterDomain}
			cfg.Options = []eci.DNSOption{{Name: "ndots", Value: "5"}}
		} else {
			req.DnsPolicy = "Default"
		}
	}
	if d := pod.Spec.DNSConfig; d != nil {
		cfg.NameServers = append(cfg.NameServers, d.Nameservers...)
		cfg.Searches = append(cfg.Searches, d.Searches...)
		for _, o := range d.Options {
			opt := eci.DNSOption{Name: o.Name}
			if o.Value != nil {
				opt.Value = *o.Value
			}
			cfg.Options = append(cfg.Options, opt)
		}
	}
	if len(cfg.NameServers)+len(cfg.Searches)+len(cfg.Options) > 0 {
		req.DNSConfig = cfg
	}
	return nil
}

// dockerConfig is the shape of .dockerconfigjson (and, under "auths", of
// .dockercfg's newer form).
type dockerConfig struct {
	Auths map[string]dockerAuth `json:"auths"`
}

type dockerAuth struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Auth     string `json:"auth"`
}

// registryCredentials turns an image pull secret into ECI registry
// credentials. A missing secret is not fatal, as for the kubelet: public
// images still pull.
func (p *Translator) registryCredentials(ctx context.Context, ns, name string) ([]eci.ImageRegistryCredential, error) {
	s, err := p.opts.Kube.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var auths map[string]dockerAuth
	switch s.Type {
	case corev1.SecretTypeDockerConfigJson:
		var c dockerConfig
		if err := json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &c); err != nil {
			return nil, &InvalidPodError{Field: "secret " + name, Reason: "has an unreadable .dockerconfigjson: " + err.Error()}
		}
		auths = c.Auths
	case corev1.SecretTypeDockercfg:
		if err := json.Unmarshal(s.Data[corev1.DockerConfigKey], &auths); err != nil {
			return nil, &InvalidPodError{Field: "secret " + name, Reason: "has an unreadable .dockercfg: " + err.Error()}
		}
	default:
		return nil, &InvalidPodError{Field: "secret " + name, Reason: fmt.Sprintf("has type %s", s.Type), Fix: "use a kubernetes.io/dockerconfigjson secret"}
	}
	var out []eci.ImageRegistryCredential
	for server, a := range auths {
		user, pass := a.Username, a.Password
		if user == "" && a.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(a.Auth)
			if err == nil {
				user, pass, _ = strings.Cut(string(raw), ":")
			}
		}
		server = strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://")
		out = append(out, eci.ImageRegistryCredential{Server: strings.TrimSuffix(server, "/"), UserName: user, Password: pass})
	}
	sortCredentials(out)
	return out, nil
}

func sortCredentials(c []eci.ImageRegistryCredential) {
	sort.Slice(c, func(i, j int) bool { return c[i].Server < c[j].Server })
}
