// Package images holds the Dockerfiles of the project's images. No Docker
// engine runs where the tests run, so this test proves what it can without
// one: each Dockerfile's `go build` line builds a static binary from this
// tree (run exactly as written, with the ARGs as environment like RUN
// does), the final stage is distroless/static or scratch as a non-root
// user and starts the binary the build stage produced, and every image the
// chart references has a Dockerfile.
package images

import (
	"bufio"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/vnodectl/addon"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// instruction is one Dockerfile instruction with continuations joined.
type instruction struct {
	cmd  string // upper-case, e.g. RUN
	args string
}

type stage struct {
	from, name string
	ins        []instruction
}

func parseDockerfile(t *testing.T, p string) []stage {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages []stage
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			fields := strings.Fields(in.args)
			s := stage{from: fields[0]}
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				s.name = fields[2]
			}
			stages = append(stages, s)
			return
		}
		if len(stages) == 0 {
			t.Fatalf("%s: %s before FROM", p, in.cmd)
		}
		stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	flush()
	return stages
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found above images/: %v", err)
	}
	return root
}

func TestDockerfiles(t *testing.T) {
	root := repoRoot(t)
	files, err := filepath.Glob(filepath.Join(root, "images", "*", "Dockerfile"))
	if err != nil || len(files) < 4 {
		t.Fatalf("Dockerfiles: %v %v", files, err)
	}
	for _, df := range files {
		name := filepath.Base(filepath.Dir(df))
		t.Run(name, func(t *testing.T) {
			stages := parseDockerfile(t, df)
			if len(stages) < 2 {
				t.Fatalf("%d stages: want a build stage and a runtime stage", len(stages))
			}
			final := stages[len(stages)-1]
			if !(strings.HasPrefix(final.from, "gcr.io/distroless/static") && strings.HasSuffix(final.from, ":nonroot")) && final.from != "scratch" {
				t.Errorf("final stage FROM %s: want gcr.io/distroless/static...:nonroot or scratch", final.from)
			}
			var user, entry, copySrc, copyDst, copyFrom string
			for _, in := range final.ins {
				switch in.cmd {
				case "USER":
					user = in.args
				case "ENTRYPOINT":
					var argv []string
					if err := json.Unmarshal([]byte(in.args), &argv); err != nil || len(argv) == 0 {
						t.Fatalf("ENTRYPOINT %s is not an exec-form array", in.args)
					}
					entry = argv[0]
				case "COPY":
					f := strings.Fields(in.args)
					if len(f) == 3 && strings.HasPrefix(f[0], "--from=") {
						copyFrom, copySrc, copyDst = strings.TrimPrefix(f[0], "--from="), f[1], f[2]
					}
				}
			}
			if uid, _, _ := strings.Cut(user, ":"); user == "" || uid == "0" || uid == "root" {
				t.Errorf("final stage USER %q: want a non-root user", user)
			}
			if entry == "" || entry != copyDst || path.Base(entry) != name {
				t.Errorf("ENTRYPOINT %q, COPY destination %q: want the %s binary the build stage made", entry, copyDst, name)
			}
			var build *stage
			for i := range stages {
				if stages[i].name == copyFrom {
					build = &stages[i]
				}
			}
			if build == nil {
				t.Fatalf("COPY --from=%s names no stage", copyFrom)
			}
			if !strings.HasPrefix(build.from, "golang:") {
				t.Errorf("build stage FROM %s: want golang", build.from)
			}
			var goBuild []string
			args := map[string]string{}
			for _, in := range build.ins {
				switch in.cmd {
				case "ARG":
					k, v, _ := strings.Cut(in.args, "=")
					args[k] = v
				case "RUN":
					if strings.Contains(in.args, "go build") {
						goBuild = append(goBuild, in.args)
					}
				}
			}
			if len(goBuild) != 1 {
				t.Fatalf("build stage has %d `go build` RUN lines, want 1", len(goBuild))
			}
			line := goBuild[0]
			if !strings.Contains(line, "CGO_ENABLED=0") || !strings.Contains(line, "-o "+copySrc) {
				t.Fatalf("go build line %q: want CGO_ENABLED=0 and -o %s", line, copySrc)
			}
			if testing.Short() {
				return
			}
			// Run the line as RUN would, in the tree the build context
			// copies, writing into a temp dir instead of /out.
			out := t.TempDir()
			cmd := exec.Command("sh", "-c", strings.ReplaceAll(line, path.Dir(copySrc)+"/", out+"/"))
			cmd.Dir = root
			cmd.Env = os.Environ()
			args["VERSION"] = "image-test"
			args["TARGETOS"], args["TARGETARCH"] = "", "" // the build host
			for k, v := range args {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", line, err, b)
			}
			bin := filepath.Join(out, path.Base(copySrc))
			ef, err := elf.Open(bin)
			if err != nil {
				t.Fatalf("built binary: %v", err)
			}
			defer ef.Close()
			libs, _ := ef.ImportedLibraries()
			for _, p := range ef.Progs {
				if p.Type == elf.PT_INTERP {
					t.Errorf("%s has a dynamic loader: it would not start on distroless/static", bin)
				}
			}
			if len(libs) > 0 {
				t.Errorf("%s links %v: want a static binary", bin, libs)
			}
			if strings.Contains(line, ".Version=${VERSION}") {
				// Both flag and cobra accept --version.
				v, err := exec.Command(bin, "--version").Output()
				if err != nil || !strings.Contains(string(v), "image-test") {
					t.Errorf("%s --version = %q, %v: want the VERSION build arg", bin, v, err)
				}
			}
		})
	}
}

// TestChartImagesHaveDockerfiles renders the chart with every component on
// and checks that each image it references is built by a Dockerfile here.
func TestChartImagesHaveDockerfiles(t *testing.T) {
	root := repoRoot(t)
	r, err := addon.Render(map[string]any{
		"region": "cn-hangzhou", "vSwitches": []any{"vsw-a"}, "securityGroup": "sg-a",
		"approver": map[string]any{"enabled": true},
	}, addon.RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	docs := releaseutil.SplitManifests(r.Manifest)
	for _, h := range r.Hooks {
		docs[h.Name] = h.Manifest
	}
	images := map[string]bool{}
	for _, doc := range docs {
		var head struct{ Kind string }
		_ = yaml.Unmarshal([]byte(doc), &head)
		var pod *corev1.PodSpec
		switch head.Kind {
		case "Deployment":
			var d appsv1.Deployment
			if err := yaml.Unmarshal([]byte(doc), &d); err != nil {
				t.Fatal(err)
			}
			pod = &d.Spec.Template.Spec
		case "Job":
			var j batchv1.Job
			if err := yaml.Unmarshal([]byte(doc), &j); err != nil {
				t.Fatal(err)
			}
			pod = &j.Spec.Template.Spec
		default:
			continue
		}
		for _, c := range append(pod.InitContainers, pod.Containers...) {
			images[c.Image] = true
		}
	}
	if len(images) < 3 {
		t.Fatalf("chart references only %v", images)
	}
	for ref := range images {
		name := path.Base(ref)
		if i := strings.IndexAny(name, ":@"); i >= 0 {
			name = name[:i]
		}
		if _, err := os.Stat(filepath.Join(root, "images", name, "Dockerfile")); err != nil {
			t.Errorf("chart image %s has no images/%s/Dockerfile", ref, name)
		}
		if _, err := os.Stat(filepath.Join(root, "cmd", name)); err != nil {
			t.Errorf("chart image %s has no cmd/%s to build", ref, name)
		}
	}
}
