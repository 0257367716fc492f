package eci

import (
	"reflect"
	"testing"
)

func TestEncodeParams(t *testing.T) {
	zero := int32(0)
	grace := int64(30)
	gid, uid := int64(0), int64(1000)
	tests := []struct {
		name string
		req  any
		want map[string]string
	}{
		{
			name: "empty request sends nothing",
			req:  &CreateContainerGroupRequest{},
			want: map[string]string{},
		},
		{
			name: "nested lists are numbered from 1",
			req: &CreateContainerGroupRequest{
				ContainerGroupName:            "web-1",
				Cpu:                           1,
				TerminationGracePeriodSeconds: &grace,
				Tags:                          []Tag{{Key: "a", Value: "b"}},
				Containers: []Container{{
					Name:            "c",
					Commands:        []string{"sh", "-c"},
					Ports:           []Port{{Port: 80, Protocol: "TCP"}},
					EnvironmentVars: []EnvVar{{Key: "K", Value: "V"}},
				}},
			},
			want: map[string]string{
				"ContainerGroupName":                 "web-1",
				"Cpu":                                "1.000000",
				"TerminationGracePeriodSeconds":      "30",
				"Tag.1.Key":                          "a",
				"Tag.1.Value":                        "b",
				"Container.1.Name":                   "c",
				"Container.1.Command.1":              "sh",
				"Container.1.Command.2":              "-c",
				"Container.1.Port.1.Port":            "80",
				"Container.1.Port.1.Protocol":        "TCP",
				"Container.1.EnvironmentVar.1.Key":   "K",
				"Container.1.EnvironmentVar.1.Value": "V",
			},
		},
		{
			name: "pointer sends explicit zero",
			req: &CreateContainerGroupRequest{Volumes: []Volume{{
				Name: "cfg", Type: VolumeConfigFile, ConfigFileDefaultMode: &zero,
				ConfigFileToPaths: []ConfigFileToPath{{Path: "a", Content: "eA=="}},
			}}},
			want: map[string]string{
				"Volume.1.Name":                                        "cfg",
				"Volume.1.Type":                                        "ConfigFileVolume",
				"Volume.1.ConfigFileVolume.DefaultMode":                "0",
				"Volume.1.ConfigFileVolume.ConfigFileToPath.1.Path":    "a",
				"Volume.1.ConfigFileVolume.ConfigFileToPath.1.Content": "eA==",
			},
		},
		{
			name: "security context: flat names for containers, host sysctls apart, init containers without them",
			req: &CreateContainerGroupRequest{
				Containers: []Container{{Name: "app", Privileged: true, RunAsGroup: &gid, RunAsNonRoot: true,
					SecurityContext: &ContainerSecurityContext{RunAsUser: &uid}}},
				InitContainers: []InitContainer{{Name: "init", SecurityContext: &ContainerSecurityContext{RunAsUser: &uid}}},
				Sysctls:        []Sysctl{{Name: "net.ipv4.ping_group_range", Value: "0 1"}},
				HostSysctls:    []Sysctl{{Name: "net.core.somaxconn", Value: "1024"}},
			},
			want: map[string]string{
				"Container.1.Name":                          "app",
				"Container.1.SecurityContextPrivileged":     "true",
				"Container.1.SecurityContextRunAsGroup":     "0",
				"Container.1.SecurityContextRunAsNonRoot":   "true",
				"Container.1.SecurityContext.RunAsUser":     "1000",
				"InitContainer.1.Name":                      "init",
				"InitContainer.1.SecurityContext.RunAsUser": "1000",
				"SecurityContext.Sysctl.1.Name":             "net.ipv4.ping_group_range",
				"SecurityContext.Sysctl.1.Value":            "0 1",
				"HostSecurityContext.Sysctl.1.Name":         "net.core.somaxconn",
				"HostSecurityContext.Sysctl.1.Value":        "1024",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := encodeParams(tt.req)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("encodeParams() =\n%v\nwant\n%v", got, tt.want)
			}
		})
	}
}
