package simulator

// Wire types: field names are exactly the ECI OpenAPI JSON names so that
// encoding/json produces the cloud's shape without tags. They are exported
// so tests and tools can decode simulator responses and inspect Groups().

// Group statuses (the ECI "Status" values).
const (
	StatusPending     = "Pending"
	StatusScheduling  = "Scheduling"
	StatusRunning     = "Running"
	StatusSucceeded   = "Succeeded"
	StatusFailed      = "Failed"
	StatusRestarting  = "Restarting"
	StatusUpdating    = "Updating"
	StatusTerminating = "Terminating"
	StatusExpired     = "Expired"
)

// Container states (ContainerState.State).
const (
	StateWaiting    = "Waiting"
	StateRunning    = "Running"
	StateTerminated = "Terminated"
)

// Restart policies.
const (
	RestartAlways    = "Always"
	RestartNever     = "Never"
	RestartOnFailure = "OnFailure"
)

// isTerminal reports whether a group status is final.
func isTerminal(status string) bool {
	return status == StatusSucceeded || status == StatusFailed || status == StatusExpired
}

// Tag is a resource tag.
type Tag struct {
	Key   string
	Value string
}

// Event is a group event, deduplicated by Reason+Message with Count.
type Event struct {
	Count          int
	Type           string
	Name           string
	Reason         string
	Message        string
	FirstTimestamp string
	LastTimestamp  string
}

// ContainerGroup is one item of DescribeContainerGroups.ContainerGroups.
type ContainerGroup struct {
	ContainerGroupId   string
	ContainerGroupName string
	RegionId           string
	ZoneId             string
	VSwitchId          string
	VpcId              string
	SecurityGroupId    string
	Status             string
	Cpu                float64
	Memory             float64
	InstanceType       string
	IntranetIp         string
	InternetIp         string
	EniInstanceId      string
	RestartPolicy      string
	CreationTime       string
	SucceededTime      string
	FailedTime         string
	ExpiredTime        string
	SpotStrategy       string
	SpotPriceLimit     float64
	RamRoleName        string
	ResourceGroupId    string
	EphemeralStorage   int
	// ComputeCategory is published as one string: the categories
	// requested, comma-separated.
	ComputeCategory    string
	Tags               []Tag
	Events             []Event
	Containers         []Container
	InitContainers     []InitContainer
	Volumes            []Volume
	HostAliases        []HostAlias
	DnsConfig          DnsConfig
	EciSecurityContext EciSecurityContext
}

// Container is a container's spec and state as returned by Describe.
type Container struct {
	Name            string
	Image           string
	Cpu             float64
	Memory          float64
	Gpu             int
	WorkingDir      string
	ImagePullPolicy string
	Ready           bool
	RestartCount    int
	Stdin           bool
	StdinOnce       bool
	Tty             bool
	Commands        []string
	Args            []string
	Ports           []Port
	EnvironmentVars []EnvironmentVar
	VolumeMounts    []VolumeMount
	CurrentState    ContainerState
	PreviousState   ContainerState
	ReadinessProbe  *Probe           `json:",omitempty"`
	LivenessProbe   *Probe           `json:",omitempty"`
	StartupProbe    *Probe           `json:",omitempty"`
	SecurityContext *SecurityContext `json:",omitempty"`
}

// InitContainer is an init container as DescribeContainerGroups publishes
// it: fewer fields than a Container (no probes, no Stdin/StdinOnce/Tty, no
// mount SubPath), and its command is "Command", not "Commands".
type InitContainer struct {
	Name            string
	Image           string
	Cpu             float64
	Memory          float64
	Gpu             int
	WorkingDir      string
	ImagePullPolicy string
	Ready           bool
	RestartCount    int
	Command         []string
	Args            []string
	Ports           []Port
	EnvironmentVars []EnvironmentVar
	VolumeMounts    []InitVolumeMount
	CurrentState    ContainerState
	PreviousState   ContainerState
	SecurityContext *SecurityContext `json:",omitempty"`
}

// InitVolumeMount is a volume mount of an init container as published
// (no SubPath).
type InitVolumeMount struct {
	Name             string
	MountPath        string
	ReadOnly         bool
	MountPropagation string
}

// ContainerState is CurrentState/PreviousState of a container.
type ContainerState struct {
	State        string
	DetailStatus string
	ExitCode     int
	Signal       int
	Reason       string
	Message      string
	StartTime    string
	FinishTime   string
}

// Port is a container port.
type Port struct {
	Port     int
	Protocol string
}

// EnvironmentVar is a container environment variable.
type EnvironmentVar struct {
	Key       string
	Value     string
	ValueFrom *ValueFrom `json:",omitempty"`
}

// ValueFrom is an environment variable source.
type ValueFrom struct {
	FieldRef FieldRef
}

// FieldRef selects a pod field.
type FieldRef struct {
	FieldPath string
}

// VolumeMount mounts a group volume into a container.
type VolumeMount struct {
	Name             string
	MountPath        string
	ReadOnly         bool
	SubPath          string
	MountPropagation string
}

// Probe is a readiness/liveness/startup probe.
type Probe struct {
	InitialDelaySeconds int
	PeriodSeconds       int
	TimeoutSeconds      int
	SuccessThreshold    int
	FailureThreshold    int
	Execs               []string
	HttpGet             *HTTPGet   `json:",omitempty"`
	TcpSocket           *TCPSocket `json:",omitempty"`
}

// HTTPGet is an HTTP probe.
type HTTPGet struct {
	Path   string
	Port   int
	Scheme string
}

// TCPSocket is a TCP probe.
type TCPSocket struct {
	Host string
	Port int
}

// SecurityContext is a container security context. The published
// Describe answer has only ReadOnlyRootFilesystem, RunAsUser and
// Capability; what else CreateContainerGroup took (its flat
// SecurityContextPrivileged, RunAsGroup and RunAsNonRoot) is kept for the
// Go API (Group, Groups) and not rendered.
type SecurityContext struct {
	ReadOnlyRootFilesystem bool
	RunAsUser              int64
	Capability             Capability
	Privileged             bool   `json:"-"`
	RunAsGroup             *int64 `json:"-"`
	RunAsNonRoot           bool   `json:"-"`
}

// Capability lists added Linux capabilities.
type Capability struct {
	Adds []string
}

// Volume is a group volume in Describe's flattened form. The fields
// tagged json:"-" are parameters of CreateContainerGroup that
// DescribeContainerGroups does not publish: they are kept for the Go API
// (Groups, Group) and the simulator's own use, but not rendered.
type Volume struct {
	Type                              string
	Name                              string
	NFSVolumePath                     string             `json:",omitempty"`
	NFSVolumeServer                   string             `json:",omitempty"`
	NFSVolumeReadOnly                 bool               `json:",omitempty"`
	DiskVolumeDiskId                  string             `json:",omitempty"`
	DiskVolumeFsType                  string             `json:",omitempty"`
	DiskVolumeDiskSize                int                `json:"-"`
	FlexVolumeDriver                  string             `json:",omitempty"`
	FlexVolumeFsType                  string             `json:",omitempty"`
	FlexVolumeOptions                 string             `json:",omitempty"`
	EmptyDirVolumeMedium              string             `json:",omitempty"`
	EmptyDirVolumeSizeLimit           string             `json:",omitempty"`
	HostPathVolumeType                string             `json:"-"`
	HostPathVolumePath                string             `json:"-"`
	ConfigFileVolumeDefaultMode       int                `json:"-"`
	ConfigFileVolumeConfigFileToPaths []ConfigFileToPath `json:",omitempty"`
}

// ConfigFileToPath is one file of a ConfigFileVolume (Content is base64).
// Mode is not rendered (not published in DescribeContainerGroups).
type ConfigFileToPath struct {
	Path    string
	Content string
	Mode    int `json:"-"`
}

// HostAlias is an /etc/hosts entry.
type HostAlias struct {
	Ip        string
	Hostnames []string
}

// DnsConfig is the group's resolver configuration.
type DnsConfig struct {
	NameServers []string
	Searches    []string
	Options     []DnsOption
}

// DnsOption is a resolv.conf option.
type DnsOption struct {
	Name  string
	Value string
}

// EciSecurityContext holds group-level sysctls: the safe ones
// (SecurityContext.Sysctl.N) as Describe renders them, and the unsafe ones
// (HostSecurityContext.Sysctl.N), which the published Describe answer has
// no field for, for the Go API (Group, Groups) only.
type EciSecurityContext struct {
	Sysctls     []Sysctl
	HostSysctls []Sysctl `json:"-"`
}

// Sysctl is a kernel parameter.
type Sysctl struct {
	Name  string
	Value string
}

// ImageRegistryCredential is a registry login. Passwords are stored but
// never returned.
type ImageRegistryCredential struct {
	Server   string
	UserName string
	Password string
}

// ---- DescribeContainerGroupStatus (Kubernetes-shaped) ----

// GroupStatus is one item of DescribeContainerGroupStatus.Data.
type GroupStatus struct {
	ContainerGroupId string
	Name             string
	Namespace        string
	UID              string `json:"uuid"`
	Status           string
	// Annotations is a JSON object encoded as a string, as published.
	Annotations string
	PodStatus   PodStatus
}

// PodStatus mirrors Kubernetes' PodStatus with ECI's capitalisation.
type PodStatus struct {
	Phase             string
	PodIp             string
	PodIps            []PodIP
	HostIp            string
	StartTime         string
	Conditions        []PodCondition
	ContainerStatuses []K8sContainerStatus
}

// PodIP is one pod address.
type PodIP struct {
	IP string `json:"Ip"`
}

// PodCondition is a pod condition (note the lowercase keys).
type PodCondition struct {
	Type               string `json:"type"`
	Status             string `json:"status"`
	Reason             string
	Message            string
	LastTransitionTime string `json:"lastTransitionTime"`
}

// K8sContainerStatus is a container status in Kubernetes shape.
type K8sContainerStatus struct {
	Name         string
	Image        string
	ImageID      string
	Ready        bool
	Started      bool
	RestartCount int
	State        K8sContainerState
	LastState    K8sContainerState
}

// K8sContainerState has exactly one of its members set (or none). The
// names are the published ones: Kubernetes' shape with ECI's
// capitalisation (State.Running.StartedAt, State.Terminated.ExitCode, ...).
type K8sContainerState struct {
	Waiting    *K8sStateWaiting    `json:",omitempty"`
	Running    *K8sStateRunning    `json:",omitempty"`
	Terminated *K8sStateTerminated `json:",omitempty"`
}

// K8sStateWaiting is a waiting container.
type K8sStateWaiting struct {
	Reason  string `json:",omitempty"`
	Message string `json:",omitempty"`
}

// K8sStateRunning is a running container. The published metadata spells
// the field "StartedAtstartedAt", an artefact of the vendor's SDK
// generator; the wire name is StartedAt (see test/simulator/published).
type K8sStateRunning struct {
	StartedAt string
}

// K8sStateTerminated is a terminated container.
type K8sStateTerminated struct {
	ExitCode   int
	Signal     int    `json:",omitempty"`
	Reason     string `json:",omitempty"`
	Message    string `json:",omitempty"`
	StartedAt  string `json:",omitempty"`
	FinishedAt string `json:",omitempty"`
}

// ---- metrics ----

// MetricRecord is one sample of DescribeContainerGroupMetric(s).
type MetricRecord struct {
	Timestamp  string
	CPU        CPUStats
	Memory     MemoryStats
	Network    NetworkStats
	Containers []ContainerMetric
}

// ContainerMetric is the per-container part of a MetricRecord.
type ContainerMetric struct {
	Name   string
	CPU    CPUStats
	Memory MemoryStats
}

// CPUStats is CPU usage; Limit is in millicores.
type CPUStats struct {
	UsageNanoCores       int64
	UsageCoreNanoSeconds int64
	Load                 int64
	Limit                int64
}

// MemoryStats is memory usage in bytes.
type MemoryStats struct {
	AvailableBytes int64
	UsageBytes     int64
	Cache          int64
	WorkingSet     int64
	Rss            int64
}

// NetworkStats lists interfaces.
type NetworkStats struct {
	Interfaces []NetworkInterface
}

// NetworkInterface is per-interface traffic.
type NetworkInterface struct {
	Name     string
	RxBytes  int64
	TxBytes  int64
	RxErrors int64
	TxErrors int64
}

// MonitorData is one item of DescribeMultiContainerGroupMetric.MonitorDatas.
type MonitorData struct {
	ContainerGroupId string
	Records          []MetricRecord
}

// ---- image caches ----

// ImageCache is one item of DescribeImageCaches.ImageCaches.
type ImageCache struct {
	ImageCacheId     string
	ImageCacheName   string
	ContainerGroupId string
	SnapshotId       string
	Status           string
	Progress         string
	Images           []string
	ImageCacheSize   int
	CreationTime     string
	ExpireDateTime   string
	Events           []Event
	Tags             []Tag
}
