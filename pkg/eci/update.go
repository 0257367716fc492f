package eci

import "context"

// Update types of UpdateContainerGroup.
const (
	// UpdateIncremental patches the named volumes only.
	UpdateIncremental = "IncrementalUpdate"
)

// UpdateContainerGroupRequest holds the parameters of UpdateContainerGroup
// the provider uses: volumes whose files it refreshes (projected
// service-account tokens) and container images changed in place. The
// published UpdateContainerGroup takes fewer container parameters than
// CreateContainerGroup; with IncrementalUpdate a container named here
// keeps every parameter not sent.
type UpdateContainerGroupRequest struct {
	ContainerGroupId string            `eci:"ContainerGroupId"`
	UpdateType       string            `eci:"UpdateType"`
	ClientToken      string            `eci:"ClientToken"`
	Volumes          []UpdateVolume    `eci:"Volume"`
	Containers       []UpdateContainer `eci:"Container"`
}

// UpdateContainer is one container of an update (Container.N), named to
// say which, with its new image.
type UpdateContainer struct {
	Name  string `eci:"Name"`
	Image string `eci:"Image"`
}

// UpdateVolume is one volume of UpdateContainerGroup (Volume.N). The
// published UpdateContainerGroup defines fewer volume parameters than
// CreateContainerGroup: no ConfigFileVolume.DefaultMode, no per-file Mode
// and no DiskVolume, so this type has no field that could send them.
type UpdateVolume struct {
	Name              string                   `eci:"Name"`
	Type              string                   `eci:"Type"`
	EmptyDirMedium    string                   `eci:"EmptyDirVolume.Medium"`
	EmptyDirSizeLimit string                   `eci:"EmptyDirVolume.SizeLimit"`
	ConfigFileToPaths []UpdateConfigFileToPath `eci:"ConfigFileVolume.ConfigFileToPath"`
	NFSServer         string                   `eci:"NFSVolume.Server"`
	NFSPath           string                   `eci:"NFSVolume.Path"`
	NFSReadOnly       bool                     `eci:"NFSVolume.ReadOnly"`
	FlexDriver        string                   `eci:"FlexVolume.Driver"`
	FlexFsType        string                   `eci:"FlexVolume.FsType"`
	FlexOptions       string                   `eci:"FlexVolume.Options"`
	HostPathType      string                   `eci:"HostPathVolume.Type"`
	HostPathPath      string                   `eci:"HostPathVolume.Path"`
}

// UpdateConfigFileToPath is one file of a ConfigFileVolume in an update;
// Content is base64. Its mode is the one the group was created with.
type UpdateConfigFileToPath struct {
	Path    string `eci:"Path"`
	Content string `eci:"Content"`
}

// ForUpdate returns the part of a create-time volume that
// UpdateContainerGroup takes. The file modes (DefaultMode, Mode) are left
// out: the published update has no parameter for them, so they stay as
// the group was created with. ok is false for a volume the update cannot
// express at all (DiskVolume).
func (v Volume) ForUpdate() (u UpdateVolume, ok bool) {
	if v.Type == VolumeDisk {
		return UpdateVolume{}, false
	}
	u = UpdateVolume{Name: v.Name, Type: v.Type, EmptyDirMedium: v.EmptyDirMedium, EmptyDirSizeLimit: v.EmptyDirSizeLimit,
		NFSServer: v.NFSServer, NFSPath: v.NFSPath, NFSReadOnly: v.NFSReadOnly,
		FlexDriver: v.FlexDriver, FlexFsType: v.FlexFsType, FlexOptions: v.FlexOptions,
		HostPathType: v.HostPathType, HostPathPath: v.HostPathPath}
	for _, f := range v.ConfigFileToPaths {
		u.ConfigFileToPaths = append(u.ConfigFileToPaths, UpdateConfigFileToPath{Path: f.Path, Content: f.Content})
	}
	return u, true
}

// UpdateContainerGroup changes a Pending or Running group.
func (c *Client) UpdateContainerGroup(ctx context.Context, req *UpdateContainerGroupRequest) error {
	return c.call(ctx, "UpdateContainerGroup", encodeParams(req), nil)
}
