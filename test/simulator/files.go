package simulator

import (
	"encoding/base64"
	"path"
	"strconv"
	"strings"
	"sync"
)

// Containers have no real filesystem. What a script can read is the one
// thing the cloud is told about: the files of ConfigFileVolumes mounted
// into the container. They are resolved once per container spec into a
// path -> content map, which `cat` reads.

// mountedFiles returns the files a container sees: every ConfigFileVolume
// file under each of its VolumeMounts, keyed by cleaned absolute path.
// With SubPath, only the volume's entries under SubPath are visible, and a
// SubPath naming a file mounts that file at MountPath itself, as
// Kubernetes does. Contents that are not valid base64 are left out: the
// cloud would not have accepted them.
func mountedFiles(volumes []Volume, mounts []VolumeMount) map[string]string {
	byName := map[string]*Volume{}
	for i := range volumes {
		byName[volumes[i].Name] = &volumes[i]
	}
	files := map[string]string{}
	for _, m := range mounts {
		v := byName[m.Name]
		if v == nil || v.Type != volumeTypeConfigFile {
			continue
		}
		sub := strings.Trim(path.Clean("/"+m.SubPath), "/")
		for _, f := range v.ConfigFileVolumeConfigFileToPaths {
			data, err := base64.StdEncoding.DecodeString(f.Content)
			if err != nil {
				continue
			}
			rel := strings.Trim(path.Clean("/"+f.Path), "/")
			switch {
			case sub == "":
			case rel == sub:
				rel = ""
			case strings.HasPrefix(rel, sub+"/"):
				rel = strings.TrimPrefix(rel, sub+"/")
			default:
				continue
			}
			files[path.Join("/", m.MountPath, rel)] = string(data)
		}
	}
	return files
}

// resolvePath makes p absolute against the working directory.
func resolvePath(p, workdir string) string {
	if !strings.HasPrefix(p, "/") {
		if workdir == "" {
			workdir = "/"
		}
		p = workdir + "/" + p
	}
	return path.Clean(p)
}

// isDir reports whether p is a directory of files: "/" or a proper prefix
// of a file path.
func isDir(files map[string]string, p string) bool {
	if p == "/" {
		return true
	}
	for f := range files {
		if strings.HasPrefix(f, p+"/") {
			return true
		}
	}
	return false
}

// catFiles implements `cat FILE...`: the contents of each file, one log
// line per text line, and an error line with status 1 for each operand
// that is missing or a directory. Options are accepted and ignored; with
// no operand (stdin is not modelled) it prints nothing.
func catFiles(args []string, files map[string]string, workdir string) (lines []string, status int) {
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			continue
		}
		p := resolvePath(a, workdir)
		content, ok := files[p]
		switch {
		case ok:
			if content != "" {
				lines = append(lines, strings.Split(strings.TrimSuffix(content, "\n"), "\n")...)
			}
		case isDir(files, p):
			lines = append(lines, "cat: "+a+": Is a directory")
			status = 1
		default:
			lines = append(lines, "cat: "+a+": No such file or directory")
			status = 1
		}
	}
	return lines, status
}

// termSize is the window size of an exec session's terminal; the client
// changes it with resize messages while commands run.
type termSize struct {
	mu         sync.Mutex
	rows, cols int
}

func (t *termSize) set(rows, cols int) {
	t.mu.Lock()
	t.rows, t.cols = rows, cols
	t.mu.Unlock()
}

func (t *termSize) get() (rows, cols int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.rows, t.cols
}

// sttyOutput implements `stty`: "stty size" prints "ROWS COLS" of the
// session's terminal; other settings are accepted silently. Without a
// terminal it fails the way GNU stty does.
func sttyOutput(args []string, term *termSize) (lines []string, status int) {
	if term == nil {
		return []string{"stty: 'standard input': Inappropriate ioctl for device"}, 1
	}
	if len(args) == 1 && args[0] == "size" {
		rows, cols := term.get()
		return []string{strconv.Itoa(rows) + " " + strconv.Itoa(cols)}, 0
	}
	return nil, 0
}
