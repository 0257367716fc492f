package simulator

import (
	"net/http"
	"sort"
	"strings"
	"time"
)

// imageCache is a simulated image cache. Its status is derived from its
// age: Preparing for StartDelay, then Creating for StartDelay, then Ready
// (or Failed when an image contains "pull-fail").
type imageCache struct {
	seq       int64
	zoneID    string // where its build instance runs
	id        string
	name      string
	groupID   string
	snapshot  string
	images    []string
	size      int
	retention int
	created   time.Time
	tags      []Tag
}

// A cache is built by a temporary instance of 2 vCPU and 4 GiB that the
// cloud creates in one of the request's vSwitches, as the vendor's image
// cache overview documents: while it builds, it uses that zone's stock
// like a group, and a create finds no stock as a group's would.
const (
	cacheBuildCPU    = 2
	cacheBuildMemory = 4
)

// cacheBuilding reports whether c's build instance still runs.
func (s *Simulator) cacheBuilding(c *imageCache, now time.Time) bool {
	st, _ := s.cacheStatus(c, now)
	return st == "Preparing" || st == "Creating"
}

func (s *Simulator) cacheStatus(c *imageCache, now time.Time) (status, progress string) {
	d := s.cfg.StartDelay
	age := now.Sub(c.created)
	failed := false
	for _, img := range c.images {
		if strings.Contains(img, pullFailMarker) {
			failed = true
		}
	}
	switch {
	case age < d:
		return "Preparing", "0%"
	case failed:
		return "Failed", "0%"
	case age < 2*d:
		return "Creating", "50%"
	default:
		return "Ready", "100%"
	}
}

func (s *Simulator) renderCache(c *imageCache, now time.Time) ImageCache {
	status, progress := s.cacheStatus(c, now)
	ic := ImageCache{
		ImageCacheId: c.id, ImageCacheName: c.name, ContainerGroupId: c.groupID,
		Status: status, Progress: progress, Images: append([]string{}, c.images...),
		ImageCacheSize: c.size, CreationTime: fmtTime(c.created), Tags: orEmpty(append([]Tag(nil), c.tags...)),
		Events: []Event{{Count: 1, Type: "Normal", Name: c.name, Reason: "Created",
			Message: "Image cache " + c.id + " created", FirstTimestamp: fmtTime(c.created), LastTimestamp: fmtTime(c.created)}},
	}
	if c.retention > 0 {
		ic.ExpireDateTime = fmtTime(c.created.Add(time.Duration(c.retention) * 24 * time.Hour))
	}
	at := fmtTime(c.created.Add(2 * s.cfg.StartDelay))
	switch status {
	case "Ready":
		ic.SnapshotId = c.snapshot
		ic.Events = append(ic.Events, Event{Count: 1, Type: "Normal", Name: c.name, Reason: "Ready",
			Message: "Image cache is ready", FirstTimestamp: at, LastTimestamp: at})
	case "Failed":
		at = fmtTime(c.created.Add(s.cfg.StartDelay))
		ic.Events = append(ic.Events, Event{Count: 1, Type: "Warning", Name: c.name, Reason: "Failed",
			Message: "Failed to pull images for the image cache", FirstTimestamp: at, LastTimestamp: at})
	}
	return ic
}

// opCreateImageCache implements CreateImageCache.
func (s *Simulator) opCreateImageCache(rc *reqCtx) (response, *apiError) {
	p := rc.p
	name, err := p.required("ImageCacheName")
	if err != nil {
		return nil, err
	}
	if err := validateName("ImageCacheName", name); err != nil {
		return nil, err
	}
	images, err := p.strings("Image")
	if err != nil {
		return nil, err
	}
	if len(images) == 0 {
		return nil, errMissing("Image.1")
	}
	if len(images) > 20 {
		return nil, errInvalid("Image", "at most 20 images are allowed")
	}
	sg, err := p.required("SecurityGroupId")
	if err != nil {
		return nil, err
	}
	if len(s.sgs) > 0 && !s.sgs[sg] {
		return nil, newError(http.StatusNotFound, CodeInvalidSecurityGroupID, "The specified SecurityGroupId %q does not exist.", sg)
	}
	vsws, err := s.parseVSwitches(p)
	if err != nil {
		return nil, err
	}
	size, err := p.integer("ImageCacheSize", 20, 20, 2000)
	if err != nil {
		return nil, err
	}
	retention, err := p.integer("RetentionDays", 0, 0, 3650)
	if err != nil {
		return nil, err
	}
	tags, err := parseTags(p)
	if err != nil {
		return nil, err
	}
	var creds groupSpec
	if err := parseMiscCredentials(p, &creds); err != nil {
		return nil, err
	}
	zoneID, err := s.placeCacheBuild(vsws)
	if err != nil {
		return nil, err
	}
	s.seq++
	c := &imageCache{
		seq: s.seq, id: s.randomID("imc-", 20), name: name, groupID: s.randomID("eci-", 20),
		snapshot: s.randomID("s-", 20), images: images, size: int(size), retention: int(retention),
		created: rc.now, tags: tags, zoneID: zoneID,
	}
	s.caches[c.id] = c
	s.log.Info("image cache created", "id", c.id, "name", name, "images", images)
	return response{"ImageCacheId": c.id, "ContainerGroupId": c.groupID}, nil
}

// opDescribeImageCaches implements DescribeImageCaches (filters:
// ImageCacheId, ImageCacheName, SnapshotId, Image, Tag.N: a cache must
// carry every tag asked for), newest first.
func (s *Simulator) opDescribeImageCaches(rc *reqCtx) (response, *apiError) {
	p := rc.p
	ids := map[string]bool{}
	for _, id := range strings.Split(p.str("ImageCacheId"), ",") {
		if id = strings.TrimSpace(id); id != "" {
			ids[id] = true
		}
	}
	name, snap, image := p.str("ImageCacheName"), p.str("SnapshotId"), p.str("Image")
	want, err := parseTags(p)
	if err != nil {
		return nil, err
	}
	var list []*imageCache
	for _, c := range s.caches {
		if !hasTags(c.tags, want) {
			continue
		}
		if len(ids) > 0 && !ids[c.id] {
			continue
		}
		if name != "" && c.name != name {
			continue
		}
		if snap != "" {
			if st, _ := s.cacheStatus(c, rc.now); st != "Ready" || c.snapshot != snap {
				continue
			}
		}
		if image != "" {
			found := false
			for _, img := range c.images {
				found = found || img == image
			}
			if !found {
				continue
			}
		}
		list = append(list, c)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].seq > list[j].seq })
	out := make([]ImageCache, 0, len(list))
	for _, c := range list {
		out = append(out, s.renderCache(c, rc.now))
	}
	return response{"ImageCaches": out, "TotalCount": len(out)}, nil
}

// opDeleteImageCache implements DeleteImageCache.
func (s *Simulator) opDeleteImageCache(rc *reqCtx) (response, *apiError) {
	id, err := rc.p.required("ImageCacheId")
	if err != nil {
		return nil, err
	}
	if s.caches[id] == nil {
		return nil, newError(http.StatusNotFound, CodeImageCacheNotFound, "The specified ImageCacheId %q does not exist.", id)
	}
	delete(s.caches, id)
	return response{}, nil
}

// hasTags reports whether have carries every tag of want.
func hasTags(have, want []Tag) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || (h.Key == w.Key && h.Value == w.Value)
		}
		if !found {
			return false
		}
	}
	return true
}

// placeCacheBuild picks the zone of the build instance: the first of the
// vSwitches whose zone has the stock for it.
func (s *Simulator) placeCacheBuild(vswitchIDs []string) (string, *apiError) {
	var tried []string
	for _, id := range vswitchIDs {
		z := s.vswitches[id].zoneID
		tried = append(tried, z)
		uc, um := s.used(z)
		if st := s.zones[z]; st.stockCPU-uc >= cacheBuildCPU && st.stockMem-um >= cacheBuildMemory {
			return z, nil
		}
	}
	return "", newError(http.StatusForbidden, CodeNoStock,
		"The resource (%v vCPU, %v GiB) is out of stock in the specified zones; try other zones or other specifications. Zones tried: %s.",
		cacheBuildCPU, cacheBuildMemory, strings.Join(tried, ", "))
}
