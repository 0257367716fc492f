package simulator

import (
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// opCreate implements CreateContainerGroup.
func (s *Simulator) opCreate(rc *reqCtx) (response, *apiError) {
	p := rc.p
	sg, err := p.required("SecurityGroupId")
	if err != nil {
		return nil, err
	}
	if len(s.sgs) > 0 && !s.sgs[sg] {
		return nil, newError(http.StatusNotFound, CodeInvalidSecurityGroupID,
			"The specified SecurityGroupId %q does not exist.", sg)
	}
	vswitches, err := s.parseVSwitches(p)
	if err != nil {
		return nil, err
	}
	strategy := p.str("ScheduleStrategy")
	if strategy != "" && strategy != "VSwitchOrdered" && strategy != "VSwitchRandom" {
		return nil, errInvalid("ScheduleStrategy", "%q is not one of VSwitchOrdered, VSwitchRandom", strategy)
	}
	zone := p.str("ZoneId")
	if zone != "" && s.zones[zone] == nil {
		return nil, newError(http.StatusNotFound, CodeInvalidZoneID, "The specified ZoneId %q does not exist.", zone)
	}
	gs, err := parseGroupSpec(p)
	if err != nil {
		return nil, err
	}
	dryRun, err := p.boolean("DryRun", false)
	if err != nil {
		return nil, err
	}
	if _, err := p.boolean("AutoMatchImageCache", false); err != nil {
		return nil, err
	}
	cpu, mem := gs.resources()
	if cpu > maxGroupCPU {
		return nil, errInvalid("Cpu", "a group allows at most %d vCPU, the request needs %v", maxGroupCPU, cpu)
	}
	id := s.randomID("eci-", 20)
	pl, err := s.place(vswitches, strategy, zone, cpu, mem, id)
	if err != nil {
		return nil, err
	}
	if dryRun {
		s.vswitches[pl.vswitchID].release(pl.ip)
		return nil, newError(http.StatusBadRequest, CodeDryRunOperation,
			"Request validation has been passed with DryRun flag set.")
	}
	s.seq++
	g := &group{
		seq: s.seq, id: id, spec: gs, zoneID: pl.zoneID, vswitchID: pl.vswitchID, sgID: sg,
		ip: pl.ip, ipHeld: true, eni: s.randomID("eni-", 20), cpu: cpu, memory: mem,
		created: rc.now, status: StatusPending, statusAt: rc.now, changedAt: rc.now,
		bootAt: rc.now.Add(s.cfg.StartDelay),
	}
	s.buildContainers(g, nil)
	s.groups[id] = g
	s.advanceGroup(g, rc.now)
	s.log.Info("container group created", "id", id, "name", gs.name, "zone", pl.zoneID,
		"vswitch", pl.vswitchID, "ip", pl.ip, "cpu", cpu, "memory", mem)
	return response{"ContainerGroupId": id}, nil
}

// parseVSwitches reads VSwitchId: up to 10 comma-separated existing ids.
func (s *Simulator) parseVSwitches(p params) ([]string, *apiError) {
	raw, err := p.required("VSwitchId")
	if err != nil {
		return nil, err
	}
	var ids []string
	seen := map[string]bool{}
	for _, id := range strings.Split(raw, ",") {
		id = strings.TrimSpace(id)
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		if s.vswitches[id] == nil {
			return nil, newError(http.StatusNotFound, CodeInvalidVSwitchID, "The specified VSwitchId %q does not exist.", id)
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil, errMissing("VSwitchId")
	}
	if len(ids) > maxVSwitches {
		return nil, errInvalid("VSwitchId", "at most %d vSwitches are allowed, got %d", maxVSwitches, len(ids))
	}
	return ids, nil
}

// buildContainers (re)creates the runtime containers from g.spec, keeping
// restart counts and history of containers that keep their name.
func (s *Simulator) buildContainers(g *group, old map[string]*ctr) {
	mk := func(spec Container, init bool) *ctr {
		c := &ctr{spec: spec, init: init, files: mountedFiles(g.spec.volumes, spec.VolumeMounts)}
		if o := old[spec.Name]; o != nil {
			c.started, c.restarts, c.last, c.prev, c.prevLogs = o.started, o.restarts, o.last, o.prev, o.prevLogs
		}
		env := map[string]string{
			"HOSTNAME": g.hostname(),
			"PATH":     "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		}
		for _, e := range spec.EnvironmentVars {
			v := e.Value
			if e.ValueFrom != nil {
				v = g.fieldRef(e.ValueFrom.FieldRef.FieldPath)
			}
			env[e.Key] = v
		}
		var argv []string
		for _, a := range append(append([]string(nil), spec.Commands...), spec.Args...) {
			argv = append(argv, expandK8sVars(a, env))
		}
		c.prog = compileArgv(argv, env, modeContainer)
		return c
	}
	g.init, g.main = nil, nil
	for _, spec := range g.spec.initContainers {
		g.init = append(g.init, mk(spec, true))
	}
	for _, spec := range g.spec.containers {
		g.main = append(g.main, mk(spec, false))
	}
}

// expandK8sVars applies Kubernetes' $(VAR) expansion to a command or
// argument: defined variables are replaced, "$$" escapes a '$', and
// anything else is left as written.
func expandK8sVars(s string, env map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		if s[i+1] == '$' {
			b.WriteByte('$')
			i++
			continue
		}
		if s[i+1] == '(' {
			if end := strings.IndexByte(s[i+2:], ')'); end >= 0 {
				if v, ok := env[s[i+2:i+2+end]]; ok {
					b.WriteString(v)
					i += end + 2
					continue
				}
			}
		}
		b.WriteByte('$')
	}
	return b.String()
}

// groupFilter is the common filter of the two Describe operations.
type groupFilter struct {
	ids    map[string]bool
	tags   []Tag
	zone   string
	vsw    string
	sg     string
	name   string
	status string
	// rg is ResourceGroupId: only groups in that resource group. Without
	// it, groups of every resource group match.
	rg    string
	since time.Time
}

func (f groupFilter) match(g *group) bool {
	if f.ids != nil && !f.ids[g.id] {
		return false
	}
	if (f.zone != "" && g.zoneID != f.zone) || (f.vsw != "" && g.vswitchID != f.vsw) ||
		(f.sg != "" && g.sgID != f.sg) || (f.name != "" && g.spec.name != f.name) ||
		(f.status != "" && g.status != f.status) || (f.rg != "" && g.spec.resourceGroupID != f.rg) {
		return false
	}
	if !f.since.IsZero() && g.changedAt.Before(f.since) {
		return false
	}
	for _, t := range f.tags {
		v := g.tag(t.Key)
		found := false
		for _, gt := range g.spec.tags {
			if gt.Key == t.Key {
				found = true
			}
		}
		if !found || (t.Value != "" && v != t.Value) {
			return false
		}
	}
	return true
}

func (s *Simulator) parseFilter(p params) (groupFilter, *apiError) {
	var f groupFilter
	ids, has, err := p.jsonStrings("ContainerGroupIds", 20)
	if err != nil {
		return f, err
	}
	if has && len(ids) > 0 {
		f.ids = map[string]bool{}
		for _, id := range ids {
			f.ids[id] = true
		}
	}
	if f.tags, err = parseTags(p); err != nil {
		return f, err
	}
	f.zone, f.vsw, f.sg = p.str("ZoneId"), p.str("VSwitchId"), p.str("SecurityGroupId")
	f.rg = p.str("ResourceGroupId")
	return f, nil
}

// page selects up to limit matching groups, newest first, after the
// NextToken (the sequence number of the last group of the previous page).
func (s *Simulator) page(p params, f groupFilter, limit int) ([]*group, string, int, *apiError) {
	var after int64 = -1
	if tok := p.str("NextToken"); tok != "" {
		n, err := strconv.ParseInt(tok, 10, 64)
		if err != nil || n < 0 {
			return nil, "", 0, errInvalid("NextToken", "%q is not a token returned by this API", tok)
		}
		after = n
	}
	var all []*group
	for _, g := range s.groups {
		if f.match(g) {
			all = append(all, g)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].seq > all[j].seq })
	var out []*group
	next := ""
	for _, g := range all {
		if after >= 0 && g.seq >= after {
			continue
		}
		if len(out) == limit {
			next = strconv.FormatInt(out[len(out)-1].seq, 10)
			break
		}
		out = append(out, g)
	}
	return out, next, len(all), nil
}

// opDescribe implements DescribeContainerGroups.
func (s *Simulator) opDescribe(rc *reqCtx) (response, *apiError) {
	p := rc.p
	f, err := s.parseFilter(p)
	if err != nil {
		return nil, err
	}
	f.name, f.status = p.str("ContainerGroupName"), p.str("Status")
	limit, err := p.integer("Limit", 20, 1, 20)
	if err != nil {
		return nil, err
	}
	// Events are returned only when asked for (WithEvent, published as
	// "whether to return event information", with no default stated): a
	// client that reads Events without asking gets none here.
	withEvent, err := p.boolean("WithEvent", false)
	if err != nil {
		return nil, err
	}
	groups, next, total, err := s.page(p, f, int(limit))
	if err != nil {
		return nil, err
	}
	out := make([]ContainerGroup, 0, len(groups))
	for _, g := range groups {
		out = append(out, s.renderGroup(g, rc.now, withEvent))
	}
	return response{"ContainerGroups": out, "NextToken": next, "TotalCount": total}, nil
}

// opDescribeStatus implements DescribeContainerGroupStatus.
func (s *Simulator) opDescribeStatus(rc *reqCtx) (response, *apiError) {
	p := rc.p
	f, err := s.parseFilter(p)
	if err != nil {
		return nil, err
	}
	limit, err := p.integer("Limit", 200, 1, 1000)
	if err != nil {
		return nil, err
	}
	since, err := p.integer("SinceSecond", 0, 0, 1<<31)
	if err != nil {
		return nil, err
	}
	if since > 0 {
		f.since = rc.now.Add(-time.Duration(since) * time.Second)
	}
	groups, next, total, err := s.page(p, f, int(limit))
	if err != nil {
		return nil, err
	}
	out := make([]GroupStatus, 0, len(groups))
	for _, g := range groups {
		out = append(out, s.renderStatus(g, rc.now))
	}
	return response{"Data": out, "NextToken": next, "TotalCount": total}, nil
}

// lookup returns the group named by ContainerGroupId.
func (s *Simulator) lookup(p params) (*group, *apiError) {
	id, err := p.required("ContainerGroupId")
	if err != nil {
		return nil, err
	}
	g := s.groups[id]
	if g == nil {
		return nil, errGroupNotFound(id)
	}
	return g, nil
}

// opDelete implements DeleteContainerGroup. Deletion is immediate: the
// group disappears and its stock and IP are released at once.
func (s *Simulator) opDelete(rc *reqCtx) (response, *apiError) {
	g, err := s.lookup(rc.p)
	if err != nil {
		return nil, err
	}
	if _, err := rc.p.boolean("Force", false); err != nil {
		return nil, err
	}
	s.releaseIP(g)
	delete(s.groups, g.id)
	s.log.Info("container group deleted", "id", g.id, "name", g.spec.name, "status", g.status)
	return response{}, nil
}

// opRestart implements RestartContainerGroup (Pending/Running only).
func (s *Simulator) opRestart(rc *reqCtx) (response, *apiError) {
	g, err := s.lookup(rc.p)
	if err != nil {
		return nil, err
	}
	if g.status != StatusRunning && g.status != StatusPending {
		return nil, errIncorrectStatus("The container group %s is %s; only Pending or Running groups can be restarted.", g.id, g.status)
	}
	s.reboot(g, rc.now, StatusRestarting, "Restarting")
	s.advanceGroup(g, rc.now)
	return response{}, nil
}

// opUpdate implements UpdateContainerGroup. RenewUpdate replaces each
// category that is present (containers, init containers, volumes, tags,
// credentials, DNS); IncrementalUpdate patches containers and volumes by
// name and merges tags by key. Changing only tags or RestartPolicy applies
// in place; anything else restarts the group through Updating.
func (s *Simulator) opUpdate(rc *reqCtx) (response, *apiError) {
	p := rc.p
	g, err := s.lookup(p)
	if err != nil {
		return nil, err
	}
	if g.status != StatusRunning && g.status != StatusPending {
		return nil, errIncorrectStatus("The container group %s is %s; only Pending or Running groups can be updated.", g.id, g.status)
	}
	updateType := p.str("UpdateType")
	if updateType == "" {
		updateType = "RenewUpdate"
	}
	if updateType != "RenewUpdate" && updateType != "IncrementalUpdate" {
		return nil, errInvalid("UpdateType", "%q is not one of RenewUpdate, IncrementalUpdate", updateType)
	}
	merge := updateType == "IncrementalUpdate"
	ns := g.spec
	if ns.restartPolicy, err = parseRestartPolicy(p, g.spec.restartPolicy); err != nil {
		return nil, err
	}
	if p.hasList("Tag") {
		tags, err := parseTags(p)
		if err != nil {
			return nil, err
		}
		if merge {
			tags = mergeTags(g.spec.tags, tags)
			if len(tags) > maxTags {
				return nil, errInvalid("Tag", "at most %d tags are allowed", maxTags)
			}
		}
		ns.tags = tags
	}
	if p.hasList("Volume") {
		vols, err := parseVolumes(p)
		if err != nil {
			return nil, err
		}
		keepFileModes(g.spec.volumes, vols)
		if merge {
			vols = mergeVolumes(g.spec.volumes, vols)
		}
		ns.volumes = vols
	}
	if p.hasList("Container") {
		if ns.containers, err = parseContainers(p, "Container", g.spec.containers, merge); err != nil {
			return nil, err
		}
	}
	if p.hasList("InitContainer") {
		if ns.initContainers, err = parseContainers(p, "InitContainer", g.spec.initContainers, merge); err != nil {
			return nil, err
		}
	}
	if p.hasList("ImageRegistryCredential") {
		tmp := groupSpec{}
		if err := parseMiscCredentials(p, &tmp); err != nil {
			return nil, err
		}
		ns.credentials = tmp.credentials
	}
	if p.hasList("DnsConfig") {
		if err := parseDNS(p, &ns); err != nil {
			return nil, err
		}
	}
	if p.has("Cpu") || p.has("Memory") {
		tmp := groupSpec{}
		if err := parseResources(p, &tmp); err != nil {
			return nil, err
		}
		if p.has("Cpu") {
			ns.cpu = tmp.cpu
		}
		if p.has("Memory") {
			ns.memory = tmp.memory
		}
	}
	if err := checkContainers(ns); err != nil {
		return nil, err
	}
	cpu, mem := ns.resources()
	if cpu > maxGroupCPU {
		return nil, errInvalid("Cpu", "a group allows at most %d vCPU, the update needs %v", maxGroupCPU, cpu)
	}
	z := s.zones[g.zoneID]
	uc, um := s.used(g.zoneID)
	if cpu-g.cpu > z.stockCPU-uc || mem-g.memory > z.stockMem-um {
		return nil, newError(http.StatusForbidden, CodeNoStock,
			"The resource (%v vCPU, %v GiB) is out of stock in zone %s. Zones tried: %s.", cpu, mem, g.zoneID, g.zoneID)
	}
	volumesChanged := !reflect.DeepEqual(ns.volumes, g.spec.volumes)
	filesOnly := volumesChanged && onlyConfigFilesChanged(g.spec.volumes, ns.volumes)
	respec := !reflect.DeepEqual(ns.containers, g.spec.containers) ||
		!reflect.DeepEqual(ns.initContainers, g.spec.initContainers) ||
		(volumesChanged && !filesOnly) ||
		!reflect.DeepEqual(ns.credentials, g.spec.credentials) ||
		!reflect.DeepEqual(ns.dnsConfig, g.spec.dnsConfig) ||
		cpu != g.cpu || mem != g.memory
	g.spec = ns
	g.cpu, g.memory = cpu, mem
	g.touch(rc.now)
	if filesOnly && !respec {
		for _, c := range g.containers() {
			c.files = mountedFiles(g.spec.volumes, c.spec.VolumeMounts)
		}
		g.addEvent(rc.now, "Normal", "ConfigFilesUpdated", "Config file volume contents updated in place")
	}
	if !respec {
		return response{}, nil
	}
	old := map[string]*ctr{}
	for _, c := range g.containers() {
		old[c.spec.Name] = c
	}
	s.reboot(g, rc.now, StatusUpdating, "Updating")
	s.buildContainers(g, old)
	s.advanceGroup(g, rc.now)
	return response{}, nil
}

func parseMiscCredentials(p params, gs *groupSpec) *apiError {
	creds, err := p.list("ImageRegistryCredential")
	if err != nil {
		return err
	}
	for _, c := range creds {
		server, err := c.required("Server")
		if err != nil {
			return err
		}
		gs.credentials = append(gs.credentials, ImageRegistryCredential{Server: server, UserName: c.str("UserName"), Password: c.str("Password")})
	}
	return nil
}

func mergeTags(base, patch []Tag) []Tag {
	out := append([]Tag(nil), base...)
	for _, t := range patch {
		replaced := false
		for i := range out {
			if out[i].Key == t.Key {
				out[i].Value, replaced = t.Value, true
			}
		}
		if !replaced {
			out = append(out, t)
		}
	}
	return out
}

// onlyConfigFilesChanged reports whether an update changes nothing but the
// files of existing ConfigFileVolumes. The simulator applies such an update
// in place, without restarting the group, the way a kubelet refreshes
// configMap and projected token files; the real cloud's behaviour here is
// not documented, and this is the one place that assumes it.
func onlyConfigFilesChanged(old, updated []Volume) bool {
	if len(old) != len(updated) {
		return false
	}
	for i := range old {
		a, b := old[i], updated[i]
		if a.Type == volumeTypeConfigFile && b.Type == volumeTypeConfigFile && a.Name == b.Name {
			a.ConfigFileVolumeConfigFileToPaths, b.ConfigFileVolumeConfigFileToPaths = nil, nil
		}
		if !reflect.DeepEqual(a, b) {
			return false
		}
	}
	return true
}

// keepFileModes gives each updated ConfigFileVolume the file modes of the
// same-named volume it replaces: the published UpdateContainerGroup has no
// DefaultMode or Mode parameter, so an update changes the files' content,
// not their modes. (The cloud's documentation says nothing more; this is
// the reading that loses no setting.)
func keepFileModes(old, updated []Volume) {
	for i := range updated {
		u := &updated[i]
		for _, o := range old {
			if o.Name != u.Name || o.Type != volumeTypeConfigFile || u.Type != volumeTypeConfigFile {
				continue
			}
			u.ConfigFileVolumeDefaultMode = o.ConfigFileVolumeDefaultMode
			for j := range u.ConfigFileVolumeConfigFileToPaths {
				for _, of := range o.ConfigFileVolumeConfigFileToPaths {
					if of.Path == u.ConfigFileVolumeConfigFileToPaths[j].Path {
						u.ConfigFileVolumeConfigFileToPaths[j].Mode = of.Mode
					}
				}
			}
		}
	}
}

func mergeVolumes(base, patch []Volume) []Volume {
	out := append([]Volume(nil), base...)
	for _, v := range patch {
		replaced := false
		for i := range out {
			if out[i].Name == v.Name {
				out[i], replaced = v, true
			}
		}
		if !replaced {
			out = append(out, v)
		}
	}
	return out
}

// volumeTypeConfigFile is the Volume.N.Type of config file volumes.
const volumeTypeConfigFile = "ConfigFileVolume"
