package provider

import (
	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	corev1 "k8s.io/api/core/v1"
)

// ReasonVPCMismatch is the Warning event of a pod whose group the cloud
// placed in another VPC than the eci-profile's vpcId says.
const ReasonVPCMismatch = "VPCMismatch"

// checkVPC honours the eci-profile's vpcId, which CreateContainerGroup has
// no parameter for (a group's VPC is its vSwitch's): once a group is placed,
// the VPC the cloud reports is compared with it, and a difference, which
// means the vSwitches in use are not in the VPC the profile names, gets one
// Warning event on the pod (placement is recorded once per pod).
func (p *Provider) checkVPC(pod *corev1.Pod, g *eci.ContainerGroup) {
	if p.opts.ExpectedVPC == nil || g.VpcId == "" {
		return
	}
	want := p.opts.ExpectedVPC()
	if want == "" || want == g.VpcId {
		return
	}
	p.event(pod, corev1.EventTypeWarning, ReasonVPCMismatch,
		"container group %s is in VPC %s (vSwitch %s), but the eci-profile's vpcId is %s: the vSwitches in use (eci-profile vSwitchIds, the pod's k8s.aliyun.com/eci-vswitch or ECI_VSWITCH) are not in that VPC; fix vpcId or the vSwitches",
		g.ContainerGroupId, g.VpcId, g.VSwitchId, want)
}
