package config

import (
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	base := map[string]string{
		"ECI_VSWITCH":        "vsw-a, vsw-b",
		"ECI_SECURITY_GROUP": "sg-1",
		"ECI_REGION":         "cn-hangzhou",
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, c *Config)
	}{
		{name: "defaults", check: func(t *testing.T, c *Config) {
			if len(c.VSwitches) != 2 || c.VSwitches[1] != "vsw-b" {
				t.Errorf("VSwitches = %q", c.VSwitches)
			}
			if !c.KubeProxy || c.NodeName != "virtual-kubelet" || c.KubeletPort != 10250 {
				t.Errorf("defaults not applied: %+v", c)
			}
		}},
		{name: "kube proxy off", env: map[string]string{"ECI_KUBE_PROXY": "false"}, check: func(t *testing.T, c *Config) {
			if c.KubeProxy {
				t.Error("ECI_KUBE_PROXY=false not honoured")
			}
		}},
		{name: "missing vswitch", env: map[string]string{"ECI_VSWITCH": ""}, wantErr: "ECI_VSWITCH"},
		{name: "bad vswitch", env: map[string]string{"ECI_VSWITCH": "subnet-1"}, wantErr: `ECI_VSWITCH: "subnet-1"`},
		{name: "duplicate vswitch", env: map[string]string{"ECI_VSWITCH": "vsw-a,vsw-a"}, wantErr: "listed twice"},
		{name: "too many vswitches", env: map[string]string{"ECI_VSWITCH": "vsw-1,vsw-2,vsw-3,vsw-4,vsw-5,vsw-6,vsw-7,vsw-8,vsw-9,vsw-10,vsw-11"}, wantErr: "at most 10"},
		{name: "bad security group", env: map[string]string{"ECI_SECURITY_GROUP": "default"}, wantErr: "ECI_SECURITY_GROUP"},
		{name: "missing region", env: map[string]string{"ECI_REGION": ""}, wantErr: "ECI_REGION"},
		{name: "bad kube proxy", env: map[string]string{"ECI_KUBE_PROXY": "maybe"}, wantErr: "ECI_KUBE_PROXY"},
		{name: "bad node name", env: map[string]string{"VIRTUAL_NODE_NAME": "Bad_Name"}, wantErr: "VIRTUAL_NODE_NAME"},
		{name: "token refresh fraction out of range", env: map[string]string{"SA_TOKEN_REFRESH_FRACTION": "1.5"}, wantErr: "SA_TOKEN_REFRESH_FRACTION"},
		{name: "half a serving pair", env: map[string]string{"KUBELET_SERVING_CERT": "/x.crt"}, wantErr: "KUBELET_SERVING_KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range base {
				t.Setenv(k, v)
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c, err := Load()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load() error = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load() = %v", err)
			}
			tt.check(t, c)
		})
	}
}
