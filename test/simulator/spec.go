package simulator

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Published per-group limits.
const (
	maxContainers  = 20
	maxVolumes     = 20
	maxTags        = 20
	maxGroupCPU    = 64
	maxGroupMemory = 512
	maxVSwitches   = 10
	maxClientToken = 64
)

// Default resources of a group that specifies none.
const (
	defaultGroupCPU    = 2
	defaultGroupMemory = 4
)

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// groupSpec is everything a client specified for a group.
type groupSpec struct {
	name            string
	restartPolicy   string
	cpu, memory     float64 // explicit group-level resources (0 = derive)
	instanceTypes   []string
	tags            []Tag
	containers      []Container
	initContainers  []Container
	volumes         []Volume
	hostAliases     []HostAlias
	dnsConfig       DnsConfig
	dnsPolicy       string
	sysctls         []Sysctl // SecurityContext.Sysctl.N
	hostSysctls     []Sysctl // HostSecurityContext.Sysctl.N
	credentials     []ImageRegistryCredential
	spotStrategy    string
	spotPriceLimit  float64
	ramRoleName     string
	resourceGroupID string
	ephemeral       int
	activeDeadline  time.Duration
	terminationSecs int
	hostName        string
	computeCategory []string
	ntpServers      []string
}

// validateName checks a ContainerGroupName / ImageCacheName.
func validateName(param, v string) *apiError {
	if len(v) < 2 || len(v) > 128 || !nameRE.MatchString(v) {
		return errInvalid(param, "must be 2-128 characters of lowercase letters, digits and '-', and must not start or end with '-'")
	}
	return nil
}

// parseTags reads Tag.N.Key/Value (at most 20, unique non-empty keys).
func parseTags(p params) ([]Tag, *apiError) {
	list, err := p.list("Tag")
	if err != nil {
		return nil, err
	}
	if len(list) > maxTags {
		return nil, errInvalid("Tag", "at most %d tags are allowed, got %d", maxTags, len(list))
	}
	seen := map[string]bool{}
	var tags []Tag
	for _, t := range list {
		k := t.str("Key")
		if k == "" {
			return nil, errMissing(t.name("Key"))
		}
		if len(k) > 128 || len(t.str("Value")) > 128 {
			return nil, errInvalid(t.name("Key"), "tag keys and values are at most 128 characters")
		}
		if seen[k] {
			return nil, errInvalid(t.name("Key"), "duplicate tag key %q", k)
		}
		seen[k] = true
		tags = append(tags, Tag{Key: k, Value: t.str("Value")})
	}
	return tags, nil
}

// checkCreateTags applies CreateContainerGroup's published tag rules: a key
// of at most 64 characters that does not start with "acs:" or "aliyun" and
// contains no "http://" or "https://"; a value of at most 128 characters
// that does not start with "acs:" and contains no URL scheme.
func checkCreateTags(p params) *apiError {
	list, err := p.list("Tag")
	if err != nil {
		return err
	}
	for _, t := range list {
		k, v := t.str("Key"), t.str("Value")
		switch {
		case len(k) > 64:
			return errInvalid(t.name("Key"), "the tag key can be up to 64 characters in length")
		case strings.HasPrefix(k, "acs:") || strings.HasPrefix(k, "aliyun"):
			return errInvalid(t.name("Key"), "the tag key cannot start with acs: or aliyun")
		case strings.Contains(k, "http://") || strings.Contains(k, "https://"):
			return errInvalid(t.name("Key"), "the tag key cannot contain http:// or https://")
		case strings.HasPrefix(v, "acs:"):
			return errInvalid(t.name("Value"), "the tag value cannot start with acs:")
		case strings.Contains(v, "http://") || strings.Contains(v, "https://"):
			return errInvalid(t.name("Value"), "the tag value cannot contain http:// or https://")
		}
	}
	return nil
}

// parseGroupSpec reads the CreateContainerGroup parameters.
func parseGroupSpec(p params) (groupSpec, *apiError) {
	var gs groupSpec
	var err *apiError
	if gs.name, err = p.required("ContainerGroupName"); err != nil {
		return gs, err
	}
	if err = validateName("ContainerGroupName", gs.name); err != nil {
		return gs, err
	}
	if gs.restartPolicy, err = parseRestartPolicy(p, RestartAlways); err != nil {
		return gs, err
	}
	if err = parseResources(p, &gs); err != nil {
		return gs, err
	}
	if gs.tags, err = parseTags(p); err != nil {
		return gs, err
	}
	if err = checkCreateTags(p); err != nil {
		return gs, err
	}
	if gs.volumes, err = parseVolumes(p); err != nil {
		return gs, err
	}
	if gs.containers, err = parseContainers(p, "Container", nil, false); err != nil {
		return gs, err
	}
	if len(gs.containers) == 0 {
		return gs, errMissing("Container.1.Name")
	}
	if gs.initContainers, err = parseContainers(p, "InitContainer", nil, false); err != nil {
		return gs, err
	}
	if err = checkContainers(gs); err != nil {
		return gs, err
	}
	if err = parseMisc(p, &gs); err != nil {
		return gs, err
	}
	return gs, nil
}

func parseRestartPolicy(p params, def string) (string, *apiError) {
	switch v := p.str("RestartPolicy"); v {
	case "":
		return def, nil
	case RestartAlways, RestartNever, RestartOnFailure:
		return v, nil
	default:
		return "", errInvalid("RestartPolicy", "%q is not one of Always, Never, OnFailure", v)
	}
}

func parseResources(p params, gs *groupSpec) *apiError {
	cpu, _, err := p.float("Cpu", 0, maxGroupCPU)
	if err != nil {
		return err
	}
	mem, _, err := p.float("Memory", 0, maxGroupMemory)
	if err != nil {
		return err
	}
	gs.cpu, gs.memory = cpu, mem
	if v := p.str("InstanceType"); v != "" {
		for _, t := range strings.Split(v, ",") {
			t = strings.TrimSpace(t)
			if t == "" {
				continue
			}
			if _, _, ok := instanceTypeResources(t); !ok {
				return errInvalid("InstanceType", "%q is not a known instance type (ecs.<family>.<size>)", t)
			}
			gs.instanceTypes = append(gs.instanceTypes, t)
		}
	}
	return nil
}

// instanceTypeResources estimates vCPU/GiB of an ECS type such as
// ecs.c6.xlarge: the size gives the vCPUs (large=2, xlarge=4, Nxlarge=4N)
// and the family letter the GiB per vCPU (c=2, g=4, r=8, others 4).
func instanceTypeResources(t string) (float64, float64, bool) {
	parts := strings.Split(t, ".")
	if len(parts) != 3 || parts[0] != "ecs" || parts[1] == "" {
		return 0, 0, false
	}
	var cpu float64
	switch size := parts[2]; {
	case size == "small":
		cpu = 1
	case size == "large":
		cpu = 2
	case size == "xlarge":
		cpu = 4
	case strings.HasSuffix(size, "xlarge"):
		n, err := strconv.Atoi(strings.TrimSuffix(size, "xlarge"))
		if err != nil || n < 1 {
			return 0, 0, false
		}
		cpu = float64(4 * n)
	default:
		return 0, 0, false
	}
	ratio := 4.0
	switch parts[1][0] {
	case 'c':
		ratio = 2
	case 'r':
		ratio = 8
	}
	return cpu, cpu * ratio, true
}

// resources computes what a group consumes: explicit Cpu/Memory, else the
// first InstanceType, else the sum of its containers, else 2 vCPU / 4 GiB.
func (gs groupSpec) resources() (float64, float64) {
	cpu, mem := gs.cpu, gs.memory
	if len(gs.instanceTypes) > 0 && (cpu == 0 || mem == 0) {
		c, m, _ := instanceTypeResources(gs.instanceTypes[0])
		if cpu == 0 {
			cpu = c
		}
		if mem == 0 {
			mem = m
		}
	}
	var sc, sm float64
	for _, c := range gs.containers {
		sc += c.Cpu
		sm += c.Memory
	}
	if cpu == 0 {
		cpu = sc
	}
	if mem == 0 {
		mem = sm
	}
	if cpu == 0 {
		cpu = defaultGroupCPU
	}
	if mem == 0 {
		mem = defaultGroupMemory
	}
	return cpu, mem
}

var volumeTypes = map[string]bool{"EmptyDirVolume": true, "NFSVolume": true, "ConfigFileVolume": true,
	"FlexVolume": true, "DiskVolume": true, "HostPathVolume": true}

func parseVolumes(p params) ([]Volume, *apiError) {
	list, err := p.list("Volume")
	if err != nil {
		return nil, err
	}
	if len(list) > maxVolumes {
		return nil, errInvalid("Volume", "at most %d volumes are allowed, got %d", maxVolumes, len(list))
	}
	seen := map[string]bool{}
	var out []Volume
	for _, v := range list {
		vol := Volume{Name: v.str("Name"), Type: v.str("Type")}
		if vol.Name == "" {
			return nil, errMissing(v.name("Name"))
		}
		if seen[vol.Name] {
			return nil, errInvalid(v.name("Name"), "duplicate volume name %q", vol.Name)
		}
		seen[vol.Name] = true
		if !volumeTypes[vol.Type] {
			return nil, errInvalid(v.name("Type"), "%q is not a supported volume type", vol.Type)
		}
		switch vol.Type {
		case "EmptyDirVolume":
			e := v.sub("EmptyDirVolume")
			vol.EmptyDirVolumeMedium, vol.EmptyDirVolumeSizeLimit = e.str("Medium"), e.str("SizeLimit")
		case "NFSVolume":
			n := v.sub("NFSVolume")
			if vol.NFSVolumeServer, err = n.required("Server"); err != nil {
				return nil, err
			}
			vol.NFSVolumePath = n.str("Path")
			if vol.NFSVolumeReadOnly, err = n.boolean("ReadOnly", false); err != nil {
				return nil, err
			}
		case "ConfigFileVolume":
			c := v.sub("ConfigFileVolume")
			mode, err := c.integer("DefaultMode", 0, 0, 0777)
			if err != nil {
				return nil, err
			}
			vol.ConfigFileVolumeDefaultMode = int(mode)
			files, err := c.list("ConfigFileToPath")
			if err != nil {
				return nil, err
			}
			for _, f := range files {
				path, err := f.required("Path")
				if err != nil {
					return nil, err
				}
				m, err := f.integer("Mode", 0, 0, 0777)
				if err != nil {
					return nil, err
				}
				vol.ConfigFileVolumeConfigFileToPaths = append(vol.ConfigFileVolumeConfigFileToPaths,
					ConfigFileToPath{Path: path, Content: f.str("Content"), Mode: int(m)})
			}
		case "DiskVolume":
			d := v.sub("DiskVolume")
			if vol.DiskVolumeDiskId, err = d.required("DiskId"); err != nil {
				return nil, err
			}
			vol.DiskVolumeFsType = d.str("FsType")
			size, err := d.integer("DiskSize", 0, 0, 65536)
			if err != nil {
				return nil, err
			}
			vol.DiskVolumeDiskSize = int(size)
		case "FlexVolume":
			f := v.sub("FlexVolume")
			if vol.FlexVolumeDriver, err = f.required("Driver"); err != nil {
				return nil, err
			}
			vol.FlexVolumeFsType, vol.FlexVolumeOptions = f.str("FsType"), f.str("Options")
		case "HostPathVolume":
			h := v.sub("HostPathVolume")
			if vol.HostPathVolumePath, err = h.required("Path"); err != nil {
				return nil, err
			}
			vol.HostPathVolumeType = h.str("Type")
		}
		out = append(out, vol)
	}
	return out, nil
}

// parseContainers reads prefix.N.* ("Container" or "InitContainer").
// With base and merge set (IncrementalUpdate), listed containers are
// patched by name and only the fields present are changed.
func parseContainers(p params, prefix string, base []Container, merge bool) ([]Container, *apiError) {
	list, err := p.list(prefix)
	if err != nil {
		return nil, err
	}
	out := append([]Container(nil), base...)
	if !merge {
		out = nil
	}
	for _, cp := range list {
		name := cp.str("Name")
		if name == "" {
			return nil, errMissing(cp.name("Name"))
		}
		idx := -1
		for i := range out {
			if out[i].Name == name {
				idx = i
			}
		}
		if idx >= 0 && !merge {
			return nil, errInvalid(cp.name("Name"), "duplicate container name %q", name)
		}
		var c Container
		if idx >= 0 {
			c = out[idx]
		}
		if err := applyContainer(cp, &c); err != nil {
			return nil, err
		}
		if c.Image == "" {
			return nil, errMissing(cp.name("Image"))
		}
		if idx >= 0 {
			out[idx] = c
		} else {
			out = append(out, c)
		}
	}
	if len(out) > maxContainers {
		return nil, errInvalid(prefix, "at most %d containers are allowed, got %d", maxContainers, len(out))
	}
	return out, nil
}

// applyContainer sets the fields present in cp on c.
func applyContainer(cp params, c *Container) *apiError {
	var err *apiError
	c.Name = cp.str("Name")
	if !nameRE.MatchString(c.Name) || len(c.Name) > 128 {
		return errInvalid(cp.name("Name"), "container names are lowercase letters, digits and '-' and must not start or end with '-'")
	}
	if cp.has("Image") {
		c.Image = strings.TrimSpace(cp.str("Image"))
	}
	if v, ok, e := cp.float("Cpu", 0, maxGroupCPU); e != nil {
		return e
	} else if ok {
		c.Cpu = v
	}
	if v, ok, e := cp.float("Memory", 0, maxGroupMemory); e != nil {
		return e
	} else if ok {
		c.Memory = v
	}
	if cp.has("Gpu") {
		g, e := cp.integer("Gpu", 0, 0, 8)
		if e != nil {
			return e
		}
		c.Gpu = int(g)
	}
	if cp.has("WorkingDir") {
		c.WorkingDir = cp.str("WorkingDir")
	}
	if cp.has("ImagePullPolicy") {
		switch v := cp.str("ImagePullPolicy"); v {
		case "", "Always", "IfNotPresent", "Never":
			c.ImagePullPolicy = v
		default:
			return errInvalid(cp.name("ImagePullPolicy"), "%q is not one of Always, IfNotPresent, Never", v)
		}
	}
	for _, b := range []struct {
		key string
		dst *bool
	}{{"Stdin", &c.Stdin}, {"StdinOnce", &c.StdinOnce}, {"Tty", &c.Tty}} {
		if cp.has(b.key) {
			if *b.dst, err = cp.boolean(b.key, false); err != nil {
				return err
			}
		}
	}
	if cp.hasList("Command") {
		if c.Commands, err = cp.strings("Command"); err != nil {
			return err
		}
	}
	if cp.hasList("Arg") {
		if c.Args, err = cp.strings("Arg"); err != nil {
			return err
		}
	}
	if cp.hasList("Port") {
		ports, err := cp.list("Port")
		if err != nil {
			return err
		}
		c.Ports = nil
		for _, pp := range ports {
			n, err := pp.integer("Port", 0, 1, 65535)
			if err != nil {
				return err
			}
			if n == 0 {
				return errMissing(pp.name("Port"))
			}
			proto := strings.ToUpper(pp.str("Protocol"))
			if proto == "" {
				proto = "TCP"
			}
			if proto != "TCP" && proto != "UDP" && proto != "SCTP" {
				return errInvalid(pp.name("Protocol"), "%q is not one of TCP, UDP, SCTP", pp.str("Protocol"))
			}
			c.Ports = append(c.Ports, Port{Port: int(n), Protocol: proto})
		}
	}
	if cp.hasList("EnvironmentVar") {
		envs, err := cp.list("EnvironmentVar")
		if err != nil {
			return err
		}
		c.EnvironmentVars = nil
		for _, e := range envs {
			ev := EnvironmentVar{Key: e.str("Key"), Value: e.str("Value")}
			if ev.Key == "" {
				return errMissing(e.name("Key"))
			}
			fp := e.str("FieldRef.FieldPath")
			if fp == "" {
				fp = e.str("ValueFrom.FieldRef.FieldPath")
			}
			if fp != "" {
				ev.ValueFrom = &ValueFrom{FieldRef: FieldRef{FieldPath: fp}}
			}
			c.EnvironmentVars = append(c.EnvironmentVars, ev)
		}
	}
	if cp.hasList("VolumeMount") {
		mounts, err := cp.list("VolumeMount")
		if err != nil {
			return err
		}
		c.VolumeMounts = nil
		for _, m := range mounts {
			vm := VolumeMount{Name: m.str("Name"), MountPath: m.str("MountPath"), SubPath: m.str("SubPath"),
				MountPropagation: m.str("MountPropagation")}
			if vm.Name == "" {
				return errMissing(m.name("Name"))
			}
			if vm.MountPath == "" {
				return errMissing(m.name("MountPath"))
			}
			if vm.ReadOnly, err = m.boolean("ReadOnly", false); err != nil {
				return err
			}
			c.VolumeMounts = append(c.VolumeMounts, vm)
		}
	}
	for _, pr := range []struct {
		key string
		dst **Probe
	}{{"ReadinessProbe", &c.ReadinessProbe}, {"LivenessProbe", &c.LivenessProbe}, {"StartupProbe", &c.StartupProbe}} {
		if !cp.hasList(pr.key) {
			continue
		}
		probe, err := parseProbe(cp.sub(pr.key))
		if err != nil {
			return err
		}
		*pr.dst = probe
	}
	if err := applySecurity(cp, c); err != nil {
		return err
	}
	// Lifecycle handlers (LifecyclePostStartHandler*, LifecyclePreStopHandler*)
	// are accepted and ignored: the simulated processes have no hooks.
	return nil
}

// applySecurity reads the published security parameters of a container:
// the nested SecurityContext.ReadOnlyRootFilesystem, RunAsUser and
// Capability.Add.N, and the flat SecurityContextPrivileged,
// SecurityContextRunAsGroup and SecurityContextRunAsNonRoot (published for
// CreateContainerGroup's Container.N only).
func applySecurity(cp params, c *Container) *apiError {
	flat := []string{"SecurityContextPrivileged", "SecurityContextRunAsGroup", "SecurityContextRunAsNonRoot"}
	nested := cp.hasList("SecurityContext")
	if !nested && !cp.has(flat[0]) && !cp.has(flat[1]) && !cp.has(flat[2]) {
		return nil
	}
	ctx := &SecurityContext{}
	if c.SecurityContext != nil {
		*ctx = *c.SecurityContext
	}
	var err *apiError
	if nested {
		sc := cp.sub("SecurityContext")
		if ctx.ReadOnlyRootFilesystem, err = sc.boolean("ReadOnlyRootFilesystem", false); err != nil {
			return err
		}
		if ctx.RunAsUser, err = sc.integer("RunAsUser", 0, 0, 1<<31); err != nil {
			return err
		}
		if ctx.Capability.Adds, err = sc.strings("Capability.Add"); err != nil {
			return err
		}
	}
	if cp.has("SecurityContextPrivileged") {
		if ctx.Privileged, err = cp.boolean("SecurityContextPrivileged", false); err != nil {
			return err
		}
	}
	if cp.has("SecurityContextRunAsGroup") {
		g, err := cp.integer("SecurityContextRunAsGroup", 0, 0, 1<<31)
		if err != nil {
			return err
		}
		ctx.RunAsGroup = &g
	}
	if cp.has("SecurityContextRunAsNonRoot") {
		if ctx.RunAsNonRoot, err = cp.boolean("SecurityContextRunAsNonRoot", false); err != nil {
			return err
		}
	}
	c.SecurityContext = ctx
	return nil
}

func parseProbe(p params) (*Probe, *apiError) {
	pr := &Probe{}
	for _, f := range []struct {
		key string
		dst *int
	}{{"InitialDelaySeconds", &pr.InitialDelaySeconds}, {"PeriodSeconds", &pr.PeriodSeconds},
		{"TimeoutSeconds", &pr.TimeoutSeconds}, {"SuccessThreshold", &pr.SuccessThreshold},
		{"FailureThreshold", &pr.FailureThreshold}} {
		n, err := p.integer(f.key, 0, 0, 1<<31)
		if err != nil {
			return nil, err
		}
		*f.dst = int(n)
	}
	var err *apiError
	if pr.Execs, err = p.strings("Exec.Command"); err != nil {
		return nil, err
	}
	if p.hasList("HttpGet") {
		h := p.sub("HttpGet")
		port, err := h.integer("Port", 0, 1, 65535)
		if err != nil {
			return nil, err
		}
		pr.HttpGet = &HTTPGet{Path: h.str("Path"), Port: int(port), Scheme: h.str("Scheme")}
	}
	if p.hasList("TcpSocket") {
		t := p.sub("TcpSocket")
		port, err := t.integer("Port", 0, 1, 65535)
		if err != nil {
			return nil, err
		}
		pr.TcpSocket = &TCPSocket{Host: t.str("Host"), Port: int(port)}
	}
	return pr, nil
}

// checkContainers validates cross-references: unique names across init and
// main containers, mounts naming existing volumes, and the vCPU limit.
func checkContainers(gs groupSpec) *apiError {
	vols := map[string]bool{}
	for _, v := range gs.volumes {
		vols[v.Name] = true
	}
	names := map[string]bool{}
	var cpu float64
	for i, list := range [][]Container{gs.initContainers, gs.containers} {
		prefix := "InitContainer"
		if i == 1 {
			prefix = "Container"
		}
		for j, c := range list {
			if names[c.Name] {
				return errInvalid(prefix+"."+strconv.Itoa(j+1)+".Name", "duplicate container name %q", c.Name)
			}
			names[c.Name] = true
			for k, m := range c.VolumeMounts {
				if !vols[m.Name] {
					return errInvalid(prefix+"."+strconv.Itoa(j+1)+".VolumeMount."+strconv.Itoa(k+1)+".Name",
						"volume %q is not defined", m.Name)
				}
			}
			if i == 1 {
				cpu += c.Cpu
			}
		}
	}
	if cpu > maxGroupCPU {
		return errInvalid("Container", "the containers request %v vCPU; a group allows at most %d", cpu, maxGroupCPU)
	}
	return nil
}

// parseMisc reads the remaining top-level parameters.
func parseMisc(p params, gs *groupSpec) *apiError {
	var err *apiError
	switch v := p.str("SpotStrategy"); v {
	case "", "NoSpot", "SpotWithPriceLimit", "SpotAsPriceGo":
		gs.spotStrategy = v
	default:
		return errInvalid("SpotStrategy", "%q is not one of NoSpot, SpotWithPriceLimit, SpotAsPriceGo", v)
	}
	if gs.spotPriceLimit, _, err = p.float("SpotPriceLimit", 0, 1e9); err != nil {
		return err
	}
	switch v := p.str("DnsPolicy"); v {
	case "", "None", "Default":
		gs.dnsPolicy = v
	default:
		return errInvalid("DnsPolicy", "%q is not one of None, Default", v)
	}
	if err = parseDNS(p, gs); err != nil {
		return err
	}
	aliases, err := p.list("HostAliase")
	if err != nil {
		return err
	}
	for _, a := range aliases {
		ip, err := a.required("Ip")
		if err != nil {
			return err
		}
		hosts, err := a.strings("Hostname")
		if err != nil {
			return err
		}
		gs.hostAliases = append(gs.hostAliases, HostAlias{Ip: ip, Hostnames: hosts})
	}
	if err := parseMiscCredentials(p, gs); err != nil {
		return err
	}
	if gs.sysctls, err = parseSysctls(p, "SecurityContext.Sysctl", false); err != nil {
		return err
	}
	if gs.hostSysctls, err = parseSysctls(p, "HostSecurityContext.Sysctl", true); err != nil {
		return err
	}
	gs.ramRoleName = p.str("RamRoleName")
	gs.resourceGroupID = p.str("ResourceGroupId")
	gs.hostName = p.str("HostName")
	eph, err := p.integer("EphemeralStorage", 0, 0, 2048)
	if err != nil {
		return err
	}
	gs.ephemeral = int(eph)
	ads, err := p.integer("ActiveDeadlineSeconds", 0, 0, 1<<40)
	if err != nil {
		return err
	}
	gs.activeDeadline = time.Duration(ads) * time.Second
	tgs, err := p.integer("TerminationGracePeriodSeconds", 0, 0, 1<<31)
	if err != nil {
		return err
	}
	gs.terminationSecs = int(tgs)
	if _, err := p.integer("MaxPendingMinute", 0, 0, 1440); err != nil {
		return err
	}
	if gs.computeCategory, err = p.strings("ComputeCategory"); err != nil {
		return err
	}
	if gs.ntpServers, err = p.strings("NtpServer"); err != nil {
		return err
	}
	return nil
}

func parseDNS(p params, gs *groupSpec) *apiError {
	var err *apiError
	d := p.sub("DnsConfig")
	if gs.dnsConfig.NameServers, err = d.strings("NameServer"); err != nil {
		return err
	}
	if gs.dnsConfig.Searches, err = d.strings("Search"); err != nil {
		return err
	}
	opts, err := d.list("Option")
	if err != nil {
		return err
	}
	gs.dnsConfig.Options = nil
	for _, o := range opts {
		gs.dnsConfig.Options = append(gs.dnsConfig.Options, DnsOption{Name: o.str("Name"), Value: o.str("Value")})
	}
	return nil
}

// safeSysctls are the sysctls CreateContainerGroup takes in
// SecurityContext.Sysctl.N: those the published description of
// HostSecurityContext.Sysctl.N.Name excepts from its unsafe groups.
var safeSysctls = map[string]bool{"kernel.shm_rmid_forced": true, "net.ipv4.tcp_syncookies": true,
	"net.ipv4.ping_group_range": true, "net.ipv4.ip_unprivileged_port_start": true}

// unsafeSysctl reports whether name is one HostSecurityContext.Sysctl.N
// takes: kernel.shm* (but kernel.shm_rmid_forced), kernel.msg*,
// kernel.sem, fs.mqueue.* and net.* (but the safe ones).
func unsafeSysctl(name string) bool {
	if safeSysctls[name] {
		return false
	}
	for _, p := range []string{"kernel.shm", "kernel.msg", "fs.mqueue.", "net."} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return name == "kernel.sem"
}

// parseSysctls reads prefix.N.Name/Value, each name being one the list
// takes: the safe ones in SecurityContext.Sysctl, the unsafe ones in
// HostSecurityContext.Sysctl (host), as the published descriptions say.
func parseSysctls(p params, prefix string, host bool) ([]Sysctl, *apiError) {
	list, err := p.list(prefix)
	if err != nil {
		return nil, err
	}
	var out []Sysctl
	for _, s := range list {
		name, err := s.required("Name")
		if err != nil {
			return nil, err
		}
		switch {
		case host && !unsafeSysctl(name):
			return nil, errInvalid(s.name("Name"), "%q is not an unsafe sysctl (kernel.shm* except kernel.shm_rmid_forced, kernel.msg*, kernel.sem, fs.mqueue.*, net.* except net.ipv4.tcp_syncookies, net.ipv4.ping_group_range and net.ipv4.ip_unprivileged_port_start)", name)
		case !host && !safeSysctls[name]:
			return nil, errInvalid(s.name("Name"), "%q is not a safe sysctl (kernel.shm_rmid_forced, net.ipv4.tcp_syncookies, net.ipv4.ping_group_range, net.ipv4.ip_unprivileged_port_start); unsafe ones go in HostSecurityContext.Sysctl.N", name)
		}
		out = append(out, Sysctl{Name: name, Value: s.str("Value")})
	}
	return out, nil
}
