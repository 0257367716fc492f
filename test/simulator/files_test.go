package simulator

import (
	"encoding/base64"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestMountedFiles(t *testing.T) {
	vols := []Volume{
		{Name: "cfg", Type: "ConfigFileVolume", ConfigFileVolumeConfigFileToPaths: []ConfigFileToPath{
			{Path: "app.conf", Content: b64("a=1\n")},
			{Path: "nested/deep.txt", Content: b64("deep")},
			{Path: "broken", Content: "***not base64***"},
		}},
		{Name: "scratch", Type: "EmptyDirVolume"},
	}
	tests := []struct {
		name   string
		mounts []VolumeMount
		want   map[string]string
	}{
		{"whole volume", []VolumeMount{{Name: "cfg", MountPath: "/etc/app"}},
			map[string]string{"/etc/app/app.conf": "a=1\n", "/etc/app/nested/deep.txt": "deep"}},
		{"subPath file at the mount path", []VolumeMount{{Name: "cfg", MountPath: "/etc/app.conf", SubPath: "app.conf"}},
			map[string]string{"/etc/app.conf": "a=1\n"}},
		{"subPath directory", []VolumeMount{{Name: "cfg", MountPath: "/data/", SubPath: "nested"}},
			map[string]string{"/data/deep.txt": "deep"}},
		{"subPath naming nothing", []VolumeMount{{Name: "cfg", MountPath: "/x", SubPath: "nope"}}, map[string]string{}},
		{"other volume types and unknown volumes hold no files",
			[]VolumeMount{{Name: "scratch", MountPath: "/tmp"}, {Name: "ghost", MountPath: "/ghost"}}, map[string]string{}},
		{"two mounts", []VolumeMount{{Name: "cfg", MountPath: "/a", SubPath: "app.conf"}, {Name: "cfg", MountPath: "/b", SubPath: "app.conf"}},
			map[string]string{"/a": "a=1\n", "/b": "a=1\n"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := mountedFiles(vols, tc.mounts); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCatAndStty(t *testing.T) {
	files := map[string]string{
		"/etc/app/app.conf":  "key=value\nmode=test\n",
		"/etc/app/motd":      "no newline at end",
		"/etc/app/empty":     "",
		"/work/relative.txt": "rel\n",
	}
	term := &termSize{}
	term.set(30, 100)
	tests := []struct {
		name string
		argv []string
		term *termSize
		out  string
		code int
	}{
		{"one file", []string{"cat", "/etc/app/app.conf"}, nil, "key=value\nmode=test\n", 0},
		{"several files and flags", []string{"cat", "-n", "/etc/app/motd", "/etc/app/app.conf"}, nil, "no newline at end\nkey=value\nmode=test\n", 0},
		{"empty file", []string{"cat", "/etc/app/empty"}, nil, "", 0},
		{"relative to the working directory", []string{"cat", "relative.txt"}, nil, "rel\n", 0},
		{"unclean path", []string{"cat", "/etc//app/../app/app.conf"}, nil, "key=value\nmode=test\n", 0},
		{"missing file", []string{"cat", "/etc/passwd"}, nil, "cat: /etc/passwd: No such file or directory\n", 1},
		{"missing among found", []string{"cat", "/nope", "/etc/app/motd"}, nil, "cat: /nope: No such file or directory\nno newline at end\n", 1},
		{"directory", []string{"cat", "/etc/app"}, nil, "cat: /etc/app: Is a directory\n", 1},
		{"in a script", []string{"sh", "-c", "cat /etc/app/nope || echo fallback"}, nil, "cat: /etc/app/nope: No such file or directory\nfallback\n", 0},
		{"no operand", []string{"cat"}, nil, "", 0},
		{"stty size", []string{"stty", "size"}, term, "30 100\n", 0},
		{"stty settings are accepted", []string{"stty", "raw", "-echo"}, term, "", 0},
		{"stty without a terminal", []string{"stty", "size"}, nil, "stty: 'standard input': Inappropriate ioctl for device\n", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info := runInfo{hostname: "box", workdir: "/work", files: files, term: tc.term}
			out, code := runSync(compileArgv(tc.argv, nil, modeExec), t0, info)
			if out != tc.out || code != tc.code {
				t.Fatalf("got %q/%d, want %q/%d", out, code, tc.out, tc.code)
			}
		})
	}
}

// configGroup returns params for a group whose container mounts a
// ConfigFileVolume at /etc/app and one of its files via SubPath.
func configGroup(name string, extra map[string]string) map[string]string {
	return merge(map[string]string{
		"Volume.1.Name": "cfg", "Volume.1.Type": "ConfigFileVolume",
		"Volume.1.ConfigFileVolume.ConfigFileToPath.1.Path":    "app.conf",
		"Volume.1.ConfigFileVolume.ConfigFileToPath.1.Content": b64("key=value\nmode=test\n"),
		"Container.1.VolumeMount.1.Name":                       "cfg",
		"Container.1.VolumeMount.1.MountPath":                  "/etc/app",
		"Container.1.VolumeMount.2.Name":                       "cfg",
		"Container.1.VolumeMount.2.MountPath":                  "/etc/single.conf",
		"Container.1.VolumeMount.2.SubPath":                    "app.conf",
	}, extra)
}

func TestExecCatReadsMountedConfigFiles(t *testing.T) {
	e := newEnv(t, nil)
	id := e.create("cat-box", configGroup("cat-box", nil))
	e.clock.Advance(5 * time.Second)
	tests := []struct {
		command string
		want    string
		code    string
	}{
		{`["cat","/etc/app/app.conf"]`, "key=value\nmode=test\n", "0"},
		{`["cat","/etc/single.conf"]`, "key=value\nmode=test\n", "0"},
		{`["sh","-c","cat /etc/app/missing"]`, "cat: /etc/app/missing: No such file or directory\n", "1"},
	}
	for _, tc := range tests {
		t.Run(tc.command, func(t *testing.T) {
			e := e.sub(t)
			var out execOut
			e.mustCall("ExecContainerCommand", map[string]string{"ContainerGroupId": id, "ContainerName": "main",
				"Command": tc.command}, &out)
			resp, err := http.Get(out.HttpUrl)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != tc.want || resp.Header.Get("X-Exit-Code") != tc.code {
				t.Fatalf("got %q exit %s, want %q exit %s", body, resp.Header.Get("X-Exit-Code"), tc.want, tc.code)
			}
		})
	}

	// The container's own command sees the same files.
	logged := e.create("cat-log", configGroup("cat-log", script("Container.1", "cat /etc/single.conf; sleep infinity")))
	e.clock.Advance(5 * time.Second)
	var out struct{ Content string }
	e.mustCall("DescribeContainerLog", map[string]string{"ContainerGroupId": logged, "ContainerName": "main"}, &out)
	if out.Content != "key=value\nmode=test\n" {
		t.Fatalf("container log %q", out.Content)
	}
}

func TestPreviousContainerLog(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RestartBackoff = time.Second })
	id := e.create("crashy", script("Container.1", "echo run; date; sleep 5; exit 1"))
	logs := func(params map[string]string) string {
		var out struct{ Content string }
		e.mustCall("DescribeContainerLog", merge(map[string]string{"ContainerGroupId": id, "ContainerName": "main"}, params), &out)
		return out.Content
	}
	// The first run is up; there is no previous run yet.
	e.clock.Advance(e.sim.Config().StartDelay + time.Second)
	first := logs(nil)
	if got := logs(map[string]string{"LastTime": "true"}); got != "" || !strings.HasPrefix(first, "run\n") {
		t.Fatalf("first run log %q, previous %q (want empty)", first, got)
	}
	// It exits after 5 s and restarts 1 s later: now the first run is the
	// previous one.
	e.clock.Advance(6 * time.Second)
	current, previous := logs(nil), logs(map[string]string{"LastTime": "true"})
	if previous != first || !strings.HasPrefix(current, "run\n") || current == first {
		t.Fatalf("current %q, previous %q, want previous = first run %q", current, previous, first)
	}
	wantCode(t, e.call("DescribeContainerLog", map[string]string{"ContainerGroupId": id, "ContainerName": "main", "LastTime": "2024-01-01T00:00:00Z"}, nil),
		CodeInvalidParameter, http.StatusBadRequest)
}

// An update of a ConfigFileVolume's files (the published update takes no
// DefaultMode or Mode) changes their content in place and keeps the modes
// the group was created with.
func TestUpdateConfigFilesKeepsModes(t *testing.T) {
	e := newEnv(t, nil)
	id := e.create("modes", configGroup("modes", map[string]string{
		"Volume.1.ConfigFileVolume.DefaultMode":             "256",
		"Volume.1.ConfigFileVolume.ConfigFileToPath.1.Mode": "384",
	}))
	e.clock.Advance(5 * time.Second)
	e.mustCall("UpdateContainerGroup", map[string]string{"ContainerGroupId": id, "UpdateType": "IncrementalUpdate",
		"Volume.1.Name": "cfg", "Volume.1.Type": "ConfigFileVolume",
		"Volume.1.ConfigFileVolume.ConfigFileToPath.1.Path":    "app.conf",
		"Volume.1.ConfigFileVolume.ConfigFileToPath.1.Content": b64("key=renewed\n"),
	}, nil)
	var out execOut
	e.mustCall("ExecContainerCommand", map[string]string{"ContainerGroupId": id, "ContainerName": "main",
		"Command": `["cat","/etc/app/app.conf"]`, "Sync": "true"}, &out)
	if out.SyncResponse != "key=renewed\n" {
		t.Errorf("file after the update: %q, want the renewed content", out.SyncResponse)
	}
	g, _ := e.sim.Group(id)
	if g.Status != StatusRunning || g.Containers[0].RestartCount != 0 {
		t.Errorf("status %s, restarts %d: a file update must apply in place", g.Status, g.Containers[0].RestartCount)
	}
	v := g.Volumes[0]
	if v.ConfigFileVolumeDefaultMode != 256 || len(v.ConfigFileVolumeConfigFileToPaths) != 1 || v.ConfigFileVolumeConfigFileToPaths[0].Mode != 384 {
		t.Errorf("volume after the update: %+v; want DefaultMode 256 and the file's Mode 384 kept", v)
	}
}
