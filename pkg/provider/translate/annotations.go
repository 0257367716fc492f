package translate

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	corev1 "k8s.io/api/core/v1"
)

// Pod annotations users already write (prefix k8s.aliyun.com/). Like the
// cloud, they are read once, when the group is created.
const (
	AnnotationInstanceID       = "k8s.aliyun.com/eci-instance-id"
	AnnotationRequestID        = "k8s.aliyun.com/eci-request-id"
	AnnotationInstanceSpec     = "k8s.aliyun.com/eci-instance-spec"
	AnnotationZoneID           = "k8s.aliyun.com/eci-zone-id"
	AnnotationVSwitchID        = "k8s.aliyun.com/eci-vswitch-id"
	AnnotationVPC              = "k8s.aliyun.com/eci-vpc"
	AnnotationUseSpecs         = "k8s.aliyun.com/eci-use-specs"
	AnnotationInstanceType     = "k8s.aliyun.com/eci-instance-type"
	AnnotationInstanceFamily   = "k8s.aliyun.com/eci-instance-family"
	AnnotationComputeCategory  = "k8s.aliyun.com/eci-compute-category"
	AnnotationVSwitch          = "k8s.aliyun.com/eci-vswitch"
	AnnotationSecurityGroup    = "k8s.aliyun.com/eci-security-group"
	AnnotationScheduleStrategy = "k8s.aliyun.com/eci-schedule-strategy"
	AnnotationSpotStrategy     = "k8s.aliyun.com/eci-spot-strategy"
	AnnotationSpotPriceLimit   = "k8s.aliyun.com/eci-spot-price-limit"
	AnnotationSpotDuration     = "k8s.aliyun.com/eci-spot-duration"
	AnnotationCustomTags       = "k8s.aliyun.com/eci-custom-tags"
	AnnotationRAMRoleName      = "k8s.aliyun.com/eci-ram-role-name"
	AnnotationWithEIP          = "k8s.aliyun.com/eci-with-eip"
	AnnotationEIPInstanceID    = "k8s.aliyun.com/eci-eip-instanceid"
	AnnotationNTPServer        = "k8s.aliyun.com/eci-ntp-server"
	AnnotationImageCache       = "k8s.aliyun.com/eci-image-cache"
	AnnotationAutoIMC          = "k8s.aliyun.com/eci-auto-imc"
	AnnotationIMCID            = "k8s.aliyun.com/eci-imc-id"
	AnnotationFailStrategy     = "k8s.aliyun.com/eci-fail-strategy"
	AnnotationMaxPendingMinute = "k8s.aliyun.com/eci-max-pending-minute"
	AnnotationCustomDNSConfig  = "k8s.aliyun.com/eci-custom-dnsconfig"
	AnnotationCustomHosts      = "k8s.aliyun.com/eci-custom-hosts"
	FailStrategyFailBack       = "fail-back"
	FailStrategyFailFast       = "fail-fast"
	DefaultMaxPendingMinutes   = 240
	maxCustomTags              = 3
)

// InstanceSpec is one size a group may be created with: a vCPU-memory pair
// or ECS instance types.
type InstanceSpec struct {
	CPU, Memory  float64
	InstanceType string
}

// String is the form written back as eci-instance-spec.
func (s InstanceSpec) String() string {
	if s.InstanceType != "" {
		return s.InstanceType
	}
	return strconv.FormatFloat(s.CPU, 'f', -1, 64) + "-" + strconv.FormatFloat(s.Memory, 'f', -1, 64) + "Gi"
}

func (s InstanceSpec) Apply(req *eci.CreateContainerGroupRequest) {
	if s.InstanceType != "" {
		req.InstanceType, req.Cpu, req.Memory = s.InstanceType, 0, 0
		return
	}
	req.InstanceType, req.Cpu, req.Memory = "", s.CPU, s.Memory
}

var (
	cpuMemSpec   = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)-([0-9]+(?:\.[0-9]+)?)Gi$`)
	ecsType      = regexp.MustCompile(`^ecs\.[a-z0-9-]+\.[a-z0-9-]+$`)
	vswitchID    = regexp.MustCompile(`^vsw-[a-z0-9-]+$`)
	sgID         = regexp.MustCompile(`^sg-[a-z0-9-]+$`)
	tagKeyPrefix = []string{"aliyun", "acs:", "http://", "https://"}
)

func invalidAnnotation(key, reason, fix string) error {
	return &InvalidPodError{Field: "metadata.annotations[" + key + "]", Reason: reason, Fix: fix}
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// applyAnnotations applies the ECI pod annotations to the request, checking
// each value; a bad value names the annotation and the accepted form.
func applyAnnotations(pod *corev1.Pod, tr *Translation) error {
	a := pod.Annotations
	req := tr.Req
	if v, ok := a[AnnotationUseSpecs]; ok {
		for _, s := range splitList(v) {
			switch m := cpuMemSpec.FindStringSubmatch(s); {
			case m != nil:
				cpu, _ := strconv.ParseFloat(m[1], 64)
				mem, _ := strconv.ParseFloat(m[2], 64)
				tr.Specs = append(tr.Specs, InstanceSpec{CPU: cpu, Memory: mem})
			case ecsType.MatchString(s):
				tr.Specs = append(tr.Specs, InstanceSpec{InstanceType: s})
			default:
				return invalidAnnotation(AnnotationUseSpecs, fmt.Sprintf("%q is neither a vCPU-memory spec nor an ECS instance type", s),
					`list specs like "2-4Gi,4-8Gi,ecs.c6.xlarge"`)
			}
		}
		if len(tr.Specs) == 0 {
			return invalidAnnotation(AnnotationUseSpecs, "is empty", `list specs like "2-4Gi,4-8Gi,ecs.c6.xlarge"`)
		}
	} else if v, ok := a[AnnotationInstanceType]; ok {
		types := splitList(v)
		for _, t := range types {
			if !ecsType.MatchString(t) {
				return invalidAnnotation(AnnotationInstanceType, fmt.Sprintf("%q is not an ECS instance type", t), `use e.g. "ecs.c6.xlarge"`)
			}
		}
		tr.Specs = []InstanceSpec{{InstanceType: strings.Join(types, ",")}}
	}
	if len(tr.Specs) > 0 {
		tr.Specs[0].Apply(req)
	}
	if _, ok := a[AnnotationInstanceFamily]; ok {
		tr.Notes = append(tr.Notes, AnnotationInstanceFamily+" is not honoured by this version; use "+AnnotationUseSpecs+" with ECS instance types")
	}
	for _, k := range []string{AnnotationCustomDNSConfig, AnnotationCustomHosts} {
		if _, ok := a[k]; ok {
			tr.Notes = append(tr.Notes, k+" is not honoured by this version; use spec.dnsConfig or spec.hostAliases")
		}
	}
	if v, ok := a[AnnotationComputeCategory]; ok {
		for _, c := range splitList(v) {
			if c != "economy" && c != "general" {
				return invalidAnnotation(AnnotationComputeCategory, fmt.Sprintf("%q is not a compute category", c), `use "economy", "general" or both`)
			}
			req.ComputeCategories = append(req.ComputeCategories, c)
		}
	}
	if v, ok := a[AnnotationVSwitch]; ok {
		ids := splitList(v)
		if len(ids) == 0 || len(ids) > 10 {
			return invalidAnnotation(AnnotationVSwitch, fmt.Sprintf("has %d vSwitches", len(ids)), "list 1-10 vSwitch ids of one VPC")
		}
		for _, id := range ids {
			if !vswitchID.MatchString(id) {
				return invalidAnnotation(AnnotationVSwitch, fmt.Sprintf("%q is not a vSwitch id", id), "use ids like vsw-xxx")
			}
		}
		req.VSwitchId = strings.Join(ids, ",")
	}
	if v, ok := a[AnnotationSecurityGroup]; ok {
		if !sgID.MatchString(v) {
			return invalidAnnotation(AnnotationSecurityGroup, fmt.Sprintf("%q is not a security group id", v), "use an id like sg-xxx")
		}
		req.SecurityGroupId = v
	}
	if v, ok := a[AnnotationScheduleStrategy]; ok {
		if v != "VSwitchOrdered" && v != "VSwitchRandom" {
			return invalidAnnotation(AnnotationScheduleStrategy, fmt.Sprintf("%q is not a schedule strategy", v), "use VSwitchOrdered or VSwitchRandom")
		}
		req.ScheduleStrategy = v
	}
	if v, ok := a[AnnotationSpotStrategy]; ok {
		switch v {
		case "NoSpot", "SpotAsPriceGo":
		case "SpotWithPriceLimit":
			if _, ok := a[AnnotationSpotPriceLimit]; !ok {
				return invalidAnnotation(AnnotationSpotPriceLimit, "is required with SpotWithPriceLimit", "set the highest hourly price, e.g. \"0.25\"")
			}
		default:
			return invalidAnnotation(AnnotationSpotStrategy, fmt.Sprintf("%q is not a spot strategy", v), "use NoSpot, SpotWithPriceLimit or SpotAsPriceGo")
		}
		req.SpotStrategy = v
	}
	if v, ok := a[AnnotationSpotPriceLimit]; ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			return invalidAnnotation(AnnotationSpotPriceLimit, fmt.Sprintf("%q is not a positive price", v), `use a number such as "0.25"`)
		}
		req.SpotPriceLimit = f
	}
	if v, ok := a[AnnotationSpotDuration]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || (n != 0 && n != 1) {
			return invalidAnnotation(AnnotationSpotDuration, fmt.Sprintf("%q is not a protection period", v), `use "0" or "1" (hours)`)
		}
		req.SpotDuration = n
	}
	if v, ok := a[AnnotationCustomTags]; ok {
		pairs := splitList(v)
		if len(pairs) > maxCustomTags {
			return invalidAnnotation(AnnotationCustomTags, fmt.Sprintf("has %d tags", len(pairs)), fmt.Sprintf("use at most %d, as k:v,k:v", maxCustomTags))
		}
		for _, kv := range pairs {
			k, val, found := strings.Cut(kv, ":")
			if !found || k == "" {
				return invalidAnnotation(AnnotationCustomTags, fmt.Sprintf("%q is not key:value", kv), "write tags as k:v,k:v")
			}
			for _, pre := range tagKeyPrefix {
				if strings.HasPrefix(k, pre) {
					return invalidAnnotation(AnnotationCustomTags, fmt.Sprintf("tag key %q uses the reserved prefix %q", k, pre), "choose another key")
				}
			}
			if slices.Contains(OwnTagKeys, k) {
				return invalidAnnotation(AnnotationCustomTags, fmt.Sprintf("tag key %q is used by the virtual node", k), "choose another key")
			}
			if msg := eci.CheckTag(k, val); msg != "" {
				return invalidAnnotation(AnnotationCustomTags, msg, "write tags as k:v,k:v under the cloud's tag rules")
			}
			req.Tags = setTag(req.Tags, k, val)
		}
	}
	req.RamRoleName = a[AnnotationRAMRoleName]
	if v, ok := a[AnnotationWithEIP]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return invalidAnnotation(AnnotationWithEIP, fmt.Sprintf("%q is not a boolean", v), `use "true" or "false"`)
		}
		req.AutoCreateEip = b
	}
	req.EipInstanceId = a[AnnotationEIPInstanceID]
	if v, ok := a[AnnotationNTPServer]; ok {
		for _, s := range splitList(v) {
			if net.ParseIP(s) == nil {
				return invalidAnnotation(AnnotationNTPServer, fmt.Sprintf("%q is not an IP address", s), "list NTP server IPs separated by commas")
			}
			req.NtpServers = append(req.NtpServers, s)
		}
	}
	for _, k := range []string{AnnotationImageCache, AnnotationAutoIMC} {
		if v, ok := a[k]; ok {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return invalidAnnotation(k, fmt.Sprintf("%q is not a boolean", v), `use "true" or "false"`)
			}
			req.AutoMatchImageCache = req.AutoMatchImageCache || b
		}
	}
	req.ImageSnapshotId = a[AnnotationIMCID]
	if _, err := FailStrategy(pod); err != nil {
		return err
	}
	if v, ok := a[AnnotationMaxPendingMinute]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 10 || n > 1440 {
			return invalidAnnotation(AnnotationMaxPendingMinute, fmt.Sprintf("%q is out of range", v), "use whole minutes from 10 to 1440")
		}
		req.MaxPendingMinute = n
	}
	return nil
}

// FailStrategy returns the pod's eci-fail-strategy: fail-back (default,
// stay Pending and retry) or fail-fast.
func FailStrategy(pod *corev1.Pod) (string, error) {
	v, ok := pod.Annotations[AnnotationFailStrategy]
	if !ok {
		return FailStrategyFailBack, nil
	}
	if v != FailStrategyFailBack && v != FailStrategyFailFast {
		return "", invalidAnnotation(AnnotationFailStrategy, fmt.Sprintf("%q is not a fail strategy", v), "use fail-back or fail-fast")
	}
	return v, nil
}
