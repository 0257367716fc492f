package eci

// Tag is a key/value label on a container group. Our own groups carry the
// cluster id, node name and pod identity as tags so they can be listed and
// adopted without a region-wide scan.
type Tag struct {
	Key   string `eci:"Key" json:"Key"`
	Value string `eci:"Value" json:"Value"`
}

// EnvVar is one container environment variable (EnvironmentVar.N).
type EnvVar struct {
	Key       string `eci:"Key" json:"Key"`
	Value     string `eci:"Value" json:"Value"`
	FieldPath string `eci:"FieldRef.FieldPath" json:"-"`
}

// Port is one container port (Port.N).
type Port struct {
	Port     int32  `eci:"Port" json:"Port"`
	Protocol string `eci:"Protocol" json:"Protocol"`
}

// VolumeMount mounts a group volume into a container (VolumeMount.N).
type VolumeMount struct {
	Name      string `eci:"Name" json:"Name"`
	MountPath string `eci:"MountPath" json:"MountPath"`
	ReadOnly  bool   `eci:"ReadOnly" json:"ReadOnly"`
	SubPath   string `eci:"SubPath" json:"SubPath"`
	// MountPropagation is None, HostToContainer or Bidirectional.
	MountPropagation string `eci:"MountPropagation" json:"MountPropagation,omitempty"`
}

// HTTPHeader is one header of a lifecycle hook's HTTP GET.
type HTTPHeader struct {
	Name  string `eci:"Name"`
	Value string `eci:"Value"`
}

// Container is one container of a group (Container.N). Init containers
// have a type of their own (InitContainer): the published API gives them
// fewer parameters.
type Container struct {
	Name            string                    `eci:"Name"`
	Image           string                    `eci:"Image"`
	Cpu             float64                   `eci:"Cpu"`
	Memory          float64                   `eci:"Memory"`
	Gpu             int                       `eci:"Gpu"`
	WorkingDir      string                    `eci:"WorkingDir"`
	ImagePullPolicy string                    `eci:"ImagePullPolicy"`
	Commands        []string                  `eci:"Command"`
	Args            []string                  `eci:"Arg"`
	Ports           []Port                    `eci:"Port"`
	EnvironmentVars []EnvVar                  `eci:"EnvironmentVar"`
	VolumeMounts    []VolumeMount             `eci:"VolumeMount"`
	Stdin           bool                      `eci:"Stdin"`
	StdinOnce       bool                      `eci:"StdinOnce"`
	Tty             bool                      `eci:"Tty"`
	ReadinessProbe  *Probe                    `eci:"ReadinessProbe"`
	LivenessProbe   *Probe                    `eci:"LivenessProbe"`
	SecurityContext *ContainerSecurityContext `eci:"SecurityContext"`
	// Privileged, RunAsGroup and RunAsNonRoot are published as flat names
	// (Container.N.SecurityContextPrivileged, ...), beside the nested
	// SecurityContext.*, and for Container.N only.
	Privileged   bool   `eci:"SecurityContextPrivileged"`
	RunAsGroup   *int64 `eci:"SecurityContextRunAsGroup"`
	RunAsNonRoot bool   `eci:"SecurityContextRunAsNonRoot"`
	// Lifecycle hooks use flat parameter names in the OpenAPI.
	PostStartExec       []string `eci:"LifecyclePostStartHandlerExec"`
	PostStartHTTPPath   string   `eci:"LifecyclePostStartHandlerHttpGetPath"`
	PostStartHTTPPort   int32    `eci:"LifecyclePostStartHandlerHttpGetPort"`
	PostStartHTTPScheme string   `eci:"LifecyclePostStartHandlerHttpGetScheme"`
	PostStartHTTPHost   string   `eci:"LifecyclePostStartHandlerHttpGetHost"`
	PostStartTCPPort    int32    `eci:"LifecyclePostStartHandlerTcpSocketPort"`
	PostStartTCPHost    string   `eci:"LifecyclePostStartHandlerTcpSocketHost"`
	PreStopExec         []string `eci:"LifecyclePreStopHandlerExec"`
	PreStopHTTPPath     string   `eci:"LifecyclePreStopHandlerHttpGetPath"`
	PreStopHTTPPort     int32    `eci:"LifecyclePreStopHandlerHttpGetPort"`
	PreStopHTTPScheme   string   `eci:"LifecyclePreStopHandlerHttpGetScheme"`
	PreStopHTTPHost     string   `eci:"LifecyclePreStopHandlerHttpGetHost"`
	PreStopTCPPort      int32    `eci:"LifecyclePreStopHandlerTcpSocketPort"`
	PreStopTCPHost      string   `eci:"LifecyclePreStopHandlerTcpSocketHost"`
	// Hook HTTP GET headers (…HttpGetHttpHeader.N.Name/Value).
	PostStartHTTPHeaders []HTTPHeader `eci:"LifecyclePostStartHandlerHttpGetHttpHeader"`
	PreStopHTTPHeaders   []HTTPHeader `eci:"LifecyclePreStopHandlerHttpGetHttpHeader"`
	// TerminationMessagePath and TerminationMessagePolicy (File or
	// FallbackToLogsOnError) say where the container's termination
	// message comes from.
	TerminationMessagePath   string `eci:"TerminationMessagePath"`
	TerminationMessagePolicy string `eci:"TerminationMessagePolicy"`
}

// InitContainer is one init container of a group (InitContainer.N). The
// published CreateContainerGroup defines no probes, lifecycle hooks,
// Stdin/StdinOnce/Tty or flat SecurityContext* parameters for init
// containers, so this type has no field that could send them.
type InitContainer struct {
	Name            string                    `eci:"Name"`
	Image           string                    `eci:"Image"`
	Cpu             float64                   `eci:"Cpu"`
	Memory          float64                   `eci:"Memory"`
	Gpu             int                       `eci:"Gpu"`
	WorkingDir      string                    `eci:"WorkingDir"`
	ImagePullPolicy string                    `eci:"ImagePullPolicy"`
	Commands        []string                  `eci:"Command"`
	Args            []string                  `eci:"Arg"`
	Ports           []Port                    `eci:"Port"`
	EnvironmentVars []EnvVar                  `eci:"EnvironmentVar"`
	VolumeMounts    []VolumeMount             `eci:"VolumeMount"`
	SecurityContext *ContainerSecurityContext `eci:"SecurityContext"`
	// TerminationMessagePath and TerminationMessagePolicy as for Container.
	TerminationMessagePath   string `eci:"TerminationMessagePath"`
	TerminationMessagePolicy string `eci:"TerminationMessagePolicy"`
}

// Probe is a readiness or liveness probe; exactly one handler is set.
type Probe struct {
	InitialDelaySeconds int32    `eci:"InitialDelaySeconds"`
	PeriodSeconds       int32    `eci:"PeriodSeconds"`
	TimeoutSeconds      int32    `eci:"TimeoutSeconds"`
	SuccessThreshold    int32    `eci:"SuccessThreshold"`
	FailureThreshold    int32    `eci:"FailureThreshold"`
	ExecCommands        []string `eci:"Exec.Command"`
	HTTPGetPath         string   `eci:"HttpGet.Path"`
	HTTPGetPort         int32    `eci:"HttpGet.Port"`
	HTTPGetScheme       string   `eci:"HttpGet.Scheme"`
	TCPSocketPort       int32    `eci:"TcpSocket.Port"`
}

// ContainerSecurityContext is the part of a container's securityContext
// ECI honours.
type ContainerSecurityContext struct {
	RunAsUser              *int64   `eci:"RunAsUser"`
	ReadOnlyRootFilesystem bool     `eci:"ReadOnlyRootFilesystem"`
	CapabilityAdd          []string `eci:"Capability.Add"`
}

// Sysctl is one namespaced kernel parameter of the group. The published
// API splits them: the few the vendor deems safe go in
// SecurityContext.Sysctl.N, the unsafe ones (kernel.shm*, kernel.msg*,
// kernel.sem, fs.mqueue.*, most of net.*) in HostSecurityContext.Sysctl.N.
type Sysctl struct {
	Name  string `eci:"Name"`
	Value string `eci:"Value"`
}

// DNSOption is one resolver option.
type DNSOption struct {
	Name  string `eci:"Name"`
	Value string `eci:"Value"`
}

// DNSConfig is the group's resolver configuration.
type DNSConfig struct {
	NameServers []string    `eci:"NameServer"`
	Searches    []string    `eci:"Search"`
	Options     []DNSOption `eci:"Option"`
}

// HostAlias adds /etc/hosts entries.
type HostAlias struct {
	IP        string   `eci:"Ip"`
	Hostnames []string `eci:"Hostname"`
}

// ImageRegistryCredential lets the group pull from a private registry.
type ImageRegistryCredential struct {
	Server   string `eci:"Server"`
	UserName string `eci:"UserName"`
	Password string `eci:"Password"`
}

// ConfigFileToPath is one file of a ConfigFileVolume; Content is base64.
type ConfigFileToPath struct {
	Path    string `eci:"Path"`
	Content string `eci:"Content"`
	Mode    *int32 `eci:"Mode"`
}

// Volume is one group volume (Volume.N). Type selects which of the typed
// fields applies: EmptyDirVolume, ConfigFileVolume or NFSVolume.
type Volume struct {
	Name                  string             `eci:"Name"`
	Type                  string             `eci:"Type"`
	EmptyDirMedium        string             `eci:"EmptyDirVolume.Medium"`
	EmptyDirSizeLimit     string             `eci:"EmptyDirVolume.SizeLimit"`
	ConfigFileToPaths     []ConfigFileToPath `eci:"ConfigFileVolume.ConfigFileToPath"`
	ConfigFileDefaultMode *int32             `eci:"ConfigFileVolume.DefaultMode"`
	NFSServer             string             `eci:"NFSVolume.Server"`
	NFSPath               string             `eci:"NFSVolume.Path"`
	NFSReadOnly           bool               `eci:"NFSVolume.ReadOnly"`
	FlexDriver            string             `eci:"FlexVolume.Driver"`
	FlexFsType            string             `eci:"FlexVolume.FsType"`
	FlexOptions           string             `eci:"FlexVolume.Options"`
	HostPathType          string             `eci:"HostPathVolume.Type"`
	HostPathPath          string             `eci:"HostPathVolume.Path"`
	DiskVolumeDiskID      string             `eci:"DiskVolume.DiskId"`
	DiskVolumeFsType      string             `eci:"DiskVolume.FsType"`
	DiskVolumeDiskSize    int                `eci:"DiskVolume.DiskSize"`
}

// Volume types accepted by CreateContainerGroup.
const (
	VolumeEmptyDir   = "EmptyDirVolume"
	VolumeConfigFile = "ConfigFileVolume"
	VolumeNFS        = "NFSVolume"
	VolumeDisk       = "DiskVolume"
	VolumeFlex       = "FlexVolume"
)

// CreateContainerGroupRequest holds the parameters of CreateContainerGroup.
// RegionId is filled in by the client.
type CreateContainerGroupRequest struct {
	ZoneId                        string                    `eci:"ZoneId"`
	SecurityGroupId               string                    `eci:"SecurityGroupId"`
	VSwitchId                     string                    `eci:"VSwitchId"` // comma-separated, ≤ 10
	ScheduleStrategy              string                    `eci:"ScheduleStrategy"`
	ContainerGroupName            string                    `eci:"ContainerGroupName"`
	RestartPolicy                 string                    `eci:"RestartPolicy"`
	Cpu                           float64                   `eci:"Cpu"`
	Memory                        float64                   `eci:"Memory"`
	InstanceType                  string                    `eci:"InstanceType"`
	ClientToken                   string                    `eci:"ClientToken"`
	Tags                          []Tag                     `eci:"Tag"`
	Containers                    []Container               `eci:"Container"`
	InitContainers                []InitContainer           `eci:"InitContainer"`
	Volumes                       []Volume                  `eci:"Volume"`
	HostName                      string                    `eci:"HostName"`
	DnsPolicy                     string                    `eci:"DnsPolicy"`
	TerminationGracePeriodSeconds *int64                    `eci:"TerminationGracePeriodSeconds"`
	ActiveDeadlineSeconds         *int64                    `eci:"ActiveDeadlineSeconds"`
	DNSConfig                     *DNSConfig                `eci:"DnsConfig"`
	HostAliases                   []HostAlias               `eci:"HostAliase"`
	Sysctls                       []Sysctl                  `eci:"SecurityContext.Sysctl"`
	HostSysctls                   []Sysctl                  `eci:"HostSecurityContext.Sysctl"`
	ImageRegistryCredentials      []ImageRegistryCredential `eci:"ImageRegistryCredential"`
	ComputeCategories             []string                  `eci:"ComputeCategory"`
	SpotStrategy                  string                    `eci:"SpotStrategy"`
	SpotPriceLimit                float64                   `eci:"SpotPriceLimit"`
	SpotDuration                  int                       `eci:"SpotDuration"`
	RamRoleName                   string                    `eci:"RamRoleName"`
	AutoCreateEip                 bool                      `eci:"AutoCreateEip"`
	EipInstanceId                 string                    `eci:"EipInstanceId"`
	NtpServers                    []string                  `eci:"NtpServer"`
	AutoMatchImageCache           bool                      `eci:"AutoMatchImageCache"`
	ImageSnapshotId               string                    `eci:"ImageSnapshotId"`
	MaxPendingMinute              int                       `eci:"MaxPendingMinute"`
	ResourceGroupId               string                    `eci:"ResourceGroupId"`
	// EphemeralStorage is the temporary storage added to the free 30 GiB
	// every group has, in GiB.
	EphemeralStorage int `eci:"EphemeralStorage"`
	// ShareProcessNamespace shares one PID namespace among the containers.
	ShareProcessNamespace bool `eci:"ShareProcessNamespace"`
}

// CreateContainerGroupResponse is the result of CreateContainerGroup.
type CreateContainerGroupResponse struct {
	RequestId        string `json:"RequestId"`
	ContainerGroupId string `json:"ContainerGroupId"`
}

// DescribeContainerGroupsRequest filters DescribeContainerGroups. At most 20
// ids per call; Limit is capped at 20 by the cloud.
type DescribeContainerGroupsRequest struct {
	ContainerGroupIds  []string `eci:"-"`
	ContainerGroupName string   `eci:"ContainerGroupName"`
	Status             string   `eci:"Status"`
	ZoneId             string   `eci:"ZoneId"`
	VSwitchId          string   `eci:"VSwitchId"`
	Tags               []Tag    `eci:"Tag"`
	NextToken          string   `eci:"NextToken"`
	Limit              int      `eci:"Limit"`
	// WithEvent asks for each group's Events; without it the answer
	// need not carry them.
	WithEvent bool `eci:"WithEvent"`
}

// DescribeContainerGroupsResponse is one page of DescribeContainerGroups.
type DescribeContainerGroupsResponse struct {
	RequestId       string           `json:"RequestId"`
	NextToken       string           `json:"NextToken"`
	TotalCount      int              `json:"TotalCount"`
	ContainerGroups []ContainerGroup `json:"ContainerGroups"`
}

// ContainerGroup is the cloud's description of a container group.
type ContainerGroup struct {
	ContainerGroupId   string            `json:"ContainerGroupId"`
	ContainerGroupName string            `json:"ContainerGroupName"`
	RegionId           string            `json:"RegionId"`
	ZoneId             string            `json:"ZoneId"`
	VSwitchId          string            `json:"VSwitchId"`
	VpcId              string            `json:"VpcId"`
	SecurityGroupId    string            `json:"SecurityGroupId"`
	Status             string            `json:"Status"`
	Cpu                float64           `json:"Cpu"`
	Memory             float64           `json:"Memory"`
	InstanceType       string            `json:"InstanceType"`
	IntranetIp         string            `json:"IntranetIp"`
	InternetIp         string            `json:"InternetIp"`
	RestartPolicy      string            `json:"RestartPolicy"`
	CreationTime       string            `json:"CreationTime"`
	SucceededTime      string            `json:"SucceededTime"`
	FailedTime         string            `json:"FailedTime"`
	ExpiredTime        string            `json:"ExpiredTime"`
	Tags               []Tag             `json:"Tags"`
	Events             []Event           `json:"Events"`
	Containers         []ContainerStatus `json:"Containers"`
	InitContainers     []ContainerStatus `json:"InitContainers"`
}

// Event is a cloud-side event on a group.
type Event struct {
	Count          int    `json:"Count"`
	Type           string `json:"Type"`
	Name           string `json:"Name"`
	Reason         string `json:"Reason"`
	Message        string `json:"Message"`
	FirstTimestamp string `json:"FirstTimestamp"`
	LastTimestamp  string `json:"LastTimestamp"`
}

// ContainerStatus is a container as DescribeContainerGroups reports it.
type ContainerStatus struct {
	Name          string         `json:"Name"`
	Image         string         `json:"Image"`
	Ready         bool           `json:"Ready"`
	RestartCount  int32          `json:"RestartCount"`
	CurrentState  ContainerState `json:"CurrentState"`
	PreviousState ContainerState `json:"PreviousState"`
}

// ContainerState is the cloud's container state (State is Waiting, Running
// or Terminated).
type ContainerState struct {
	State        string `json:"State"`
	DetailStatus string `json:"DetailStatus"`
	ExitCode     int32  `json:"ExitCode"`
	Signal       int32  `json:"Signal"`
	Reason       string `json:"Reason"`
	Message      string `json:"Message"`
	StartTime    string `json:"StartTime"`
	FinishTime   string `json:"FinishTime"`
}

// Group statuses as the cloud reports them.
const (
	StatusPending        = "Pending"
	StatusScheduling     = "Scheduling"
	StatusScheduleFailed = "ScheduleFailed"
	StatusRunning        = "Running"
	StatusSucceeded      = "Succeeded"
	StatusFailed         = "Failed"
	StatusRestarting     = "Restarting"
	StatusUpdating       = "Updating"
	StatusTerminating    = "Terminating"
	StatusExpired        = "Expired"
)

// DescribeContainerGroupStatusRequest filters DescribeContainerGroupStatus,
// the cheap status call (10,000/min) that scales to many pods.
type DescribeContainerGroupStatusRequest struct {
	ContainerGroupIds []string `eci:"-"`
	Tags              []Tag    `eci:"Tag"`
	ZoneId            string   `eci:"ZoneId"`
	VSwitchId         string   `eci:"VSwitchId"`
	SinceSecond       int      `eci:"SinceSecond"`
	Limit             int      `eci:"Limit"`
	NextToken         string   `eci:"NextToken"`
}

// DescribeContainerGroupStatusResponse is one page of group statuses.
type DescribeContainerGroupStatusResponse struct {
	RequestId  string        `json:"RequestId"`
	NextToken  string        `json:"NextToken"`
	TotalCount int           `json:"TotalCount"`
	Data       []GroupStatus `json:"Data"`
}

// GroupStatus is one item of DescribeContainerGroupStatus. PodStatus has
// Kubernetes' shape with the published capitalisation (State.Running.StartedAt,
// conditions' lowercase type/status); encoding/json matches names ignoring
// case. The published response table is checked against these types by
// TestResponsesArePublished.
type GroupStatus struct {
	ContainerGroupId string      `json:"ContainerGroupId"`
	Name             string      `json:"Name"`
	Namespace        string      `json:"Namespace"`
	UID              string      `json:"uuid"`
	Status           string      `json:"Status"`
	Annotations      Annotations `json:"Annotations"`
	PodStatus        PodStatus   `json:"PodStatus"`
	// Undecoded names the fields of the answer that had an unexpected
	// type and were left empty (see UnmarshalJSON); nil when all decoded.
	Undecoded []string `json:"-"`
}

// PodStatus is the Kubernetes-shaped status the cloud computes for a group.
type PodStatus struct {
	Phase             string               `json:"Phase"`
	PodIp             string               `json:"PodIp"`
	HostIp            string               `json:"HostIp"`
	StartTime         string               `json:"StartTime"`
	Conditions        []PodCondition       `json:"Conditions"`
	ContainerStatuses []PodContainerStatus `json:"ContainerStatuses"`
}

// PodCondition is one condition of PodStatus (note the lowercase keys).
type PodCondition struct {
	Type               string `json:"type"`
	Status             string `json:"status"`
	Reason             string `json:"Reason"`
	Message            string `json:"Message"`
	LastTransitionTime string `json:"lastTransitionTime"`
}

// PodContainerStatus is one container of PodStatus; State and LastState use
// the Kubernetes shape {waiting|running|terminated}.
type PodContainerStatus struct {
	Name         string   `json:"Name"`
	Image        string   `json:"Image"`
	ImageID      string   `json:"ImageID"`
	Ready        bool     `json:"Ready"`
	Started      *bool    `json:"Started"`
	RestartCount int32    `json:"RestartCount"`
	State        K8sState `json:"State"`
	LastState    K8sState `json:"LastState"`
}

// K8sState is a container state in Kubernetes' shape; the published names
// are capitalised (Running.StartedAt, Terminated.ExitCode, ...), which the
// lowercase tags decode since encoding/json ignores case.
type K8sState struct {
	Waiting *struct {
		Reason  string `json:"reason"`
		Message string `json:"message"`
	} `json:"waiting,omitempty"`
	Running *struct {
		StartedAt string `json:"startedAt"`
	} `json:"running,omitempty"`
	Terminated *struct {
		ExitCode   int32  `json:"exitCode"`
		Signal     int32  `json:"signal"`
		Reason     string `json:"reason"`
		Message    string `json:"message"`
		StartedAt  string `json:"startedAt"`
		FinishedAt string `json:"finishedAt"`
	} `json:"terminated,omitempty"`
}

// DescribeContainerLogRequest selects the log of one container.
type DescribeContainerLogRequest struct {
	ContainerGroupId string `eci:"ContainerGroupId"`
	ContainerName    string `eci:"ContainerName"`
	Tail             int    `eci:"Tail"`
	SinceSeconds     int    `eci:"SinceSeconds"`
	LimitBytes       int64  `eci:"LimitBytes"`
	Timestamps       bool   `eci:"Timestamps"`
	// LastTime selects the previous run of the container (kubectl logs -p).
	LastTime  bool   `eci:"LastTime"`
	StartTime string `eci:"StartTime"`
}

// DescribeContainerLogResponse carries the log text.
type DescribeContainerLogResponse struct {
	RequestId     string `json:"RequestId"`
	ContainerName string `json:"ContainerName"`
	Content       string `json:"Content"`
}
