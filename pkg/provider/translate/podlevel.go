package translate

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// DefaultClusterDomain is the DNS domain of Services when neither
// CLUSTER_DOMAIN nor the cluster's CoreDNS configuration says otherwise.
const DefaultClusterDomain = "cluster.local"

// clusterDomain is the domain ClusterFirst pods search.
func (t *Translator) clusterDomain() string {
	if t.opts.ClusterDomain != "" {
		return t.opts.ClusterDomain
	}
	return DefaultClusterDomain
}

// podLevel maps DNS, host aliases and image pull secrets. The pod's
// security context is mapped with the containers (security.go).
func (t *Translator) podLevel(ctx context.Context, pod *corev1.Pod, tr *Translation) error {
	req := tr.Req
	if err := t.buildDNS(ctx, pod, tr); err != nil {
		return err
	}
	for _, h := range pod.Spec.HostAliases {
		req.HostAliases = append(req.HostAliases, eci.HostAlias{IP: h.IP, Hostnames: h.Hostnames})
	}
	for i, ref := range pod.Spec.ImagePullSecrets {
		creds, err := t.registryCredentials(ctx, pod.Namespace, ref.Name)
		if err != nil {
			return fmt.Errorf("spec.imagePullSecrets[%d] (%s): %w", i, ref.Name, err)
		}
		req.ImageRegistryCredentials = append(req.ImageRegistryCredentials, creds...)
	}
	return nil
}

var errDNSConfigRequired = &InvalidPodError{Field: "spec.dnsConfig", Reason: "is required with dnsPolicy None", Fix: "set nameservers in spec.dnsConfig"}

// buildDNS gives ClusterFirst pods the cluster DNS Service as resolver, as
// the kubelet does; Default uses the VPC resolver; None uses dnsConfig only.
func (t *Translator) buildDNS(ctx context.Context, pod *corev1.Pod, tr *Translation) error {
	req := tr.Req
	cfg := &eci.DNSConfig{}
	switch pod.Spec.DNSPolicy {
	case corev1.DNSDefault:
		req.DnsPolicy = "Default"
	case corev1.DNSNone:
		req.DnsPolicy = "None"
		if pod.Spec.DNSConfig == nil {
			return errDNSConfigRequired
		}
	default: // ClusterFirst, ClusterFirstWithHostNet
		if !tr.kubeProxy.on {
			req.DnsPolicy = "Default"
			tr.Notes = append(tr.Notes, "dnsPolicy ClusterFirst: "+tr.kubeProxy.source+" is false, so ClusterIP Services (the cluster DNS too) are unreachable; the pod uses the VPC resolver")
		} else if ips, err := t.cluster.ClusterDNS(ctx); err == nil && len(ips) > 0 {
			domain := t.clusterDomain()
			req.DnsPolicy = "None"
			cfg.NameServers = ips
			cfg.Searches = []string{pod.Namespace + ".svc." + domain, "svc." + domain, domain}
			cfg.Options = []eci.DNSOption{{Name: "ndots", Value: "5"}}
		} else {
			// As the kubelet does without a cluster DNS: the node's
			// resolver, and a Warning saying so.
			req.DnsPolicy = "Default"
			why := "the cluster DNS has no address"
			if err != nil {
				why = err.Error()
			}
			tr.MissingClusterDNS = fmt.Sprintf("dnsPolicy %s: %s; the pod uses the VPC resolver and cannot resolve Services. "+
				"Fix: create the DNS Service, or set CLUSTER_DNS_SERVICE (namespace/name) or CLUSTER_DNS (resolver IPs) on the controller", policyName(pod), why)
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

func policyName(pod *corev1.Pod) string {
	if pod.Spec.DNSPolicy == "" {
		return string(corev1.DNSClusterFirst)
	}
	return string(pod.Spec.DNSPolicy)
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
func (t *Translator) registryCredentials(ctx context.Context, ns, name string) ([]eci.ImageRegistryCredential, error) {
	s, err := t.cluster.Secret(ctx, ns, name)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return RegistryCredentials(s)
}

// RegistryCredentials turns an image pull secret (kubernetes.io/
// dockerconfigjson or dockercfg) into ECI registry credentials, sorted by
// server; a secret of another type or unreadable is an error naming it.
func RegistryCredentials(s *corev1.Secret) ([]eci.ImageRegistryCredential, error) {
	name := s.Name
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
