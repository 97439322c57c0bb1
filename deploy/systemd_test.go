package deploy

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const unitFile = "systemd/edgesplit-node@.service"

// unitRoot lays out a file-system root for `systemd-analyze --root`: the
// host's unit files (for the targets the unit names), the unit, and the
// built binary at the unit's ExecStart path.
func unitRoot(t *testing.T, bin string) string {
	t.Helper()
	root := t.TempDir()
	src := "/usr/lib/systemd/system"
	if _, err := os.Stat(src); err != nil {
		src = "/lib/systemd/system"
	}
	copyTree(t, src, filepath.Join(root, "usr/lib/systemd/system"))
	unit, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "etc/systemd/system", filepath.Base(unitFile)), unit, 0o644)
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "usr/local/bin/edgesplit"), b, 0o755)
	return root
}

// TestSystemdUnit runs `systemd-analyze verify` on an instance of the
// template unit (any warning fails: verify exits 0 on unknown keys) and
// `systemd-analyze security`, which must rate its exposure at most 2.0
// of 10. It skips only when systemd-analyze is absent or cannot verify a
// trivial unit in this sandbox, saying which.
func TestSystemdUnit(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian package systemd): the unit is NOT verified")
	}
	bin := edgesplitBin(t)
	root := unitRoot(t, bin)
	writeFile(t, filepath.Join(root, "etc/systemd/system/edgesplit-probe.service"),
		[]byte("[Unit]\nDescription=probe\n[Service]\nExecStart=/usr/local/bin/edgesplit --help\n"), 0o644)
	if out, err := exec.Command(sa, "verify", "--root="+root, "edgesplit-probe.service").CombinedOutput(); err != nil || len(out) > 0 {
		t.Skipf("systemd-analyze cannot verify even a trivial unit in this sandbox (%v): %s — the unit is NOT verified", err, out)
	}
	for _, inst := range []string{"edgesplit-node@cloud1.service", "edgesplit-node@edge1.service"} {
		out, err := exec.Command(sa, "verify", "--root="+root, inst).CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", inst, err, out)
		} else {
			t.Logf("systemd-analyze verify %s: ok, no warnings", inst)
		}
	}
	out, err := exec.Command(sa, "security", "--offline=yes", "--root="+root, "--threshold=20", "edgesplit-node@cloud1.service").CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for \S+: ([\d.]+ \S+)`).FindSubmatch(out)
	if err != nil || m == nil {
		t.Errorf("systemd-analyze security --threshold=20 (exposure ≤ 2.0): %v\n%s", err, out)
	} else {
		t.Logf("systemd-analyze security: exposure %s", m[1])
	}
}

// TestSystemdCommandLine expands the unit's ExecStart as systemd would for
// edgesplit-node@cloud1 and edgesplit-node@edge1 with the example
// environment files (their 10.0.0.x addresses moved to 127.N.M.x), the
// credentials folder %d laid out from the LoadCredential= lines, and the
// logs folder in a temporary one; then runs both command lines: the edge
// must see the cloud and offload an inference to it.
func TestSystemdCommandLine(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test skipped with -short")
	}
	bin := edgesplitBin(t)
	unit := readUnit(t)
	dir := t.TempDir()
	tls := filepath.Join(dir, "etc/edgesplit/tls")
	run(t, bin, "ca", "init", "--dir", tls)
	useAPI(t, filepath.Join(tls, "ca.crt"), newToken(t, bin, filepath.Join(tls, "api-clients.yaml")))
	logs := filepath.Join(dir, "var/log/edgesplit")
	os.MkdirAll(logs, 0o700)
	var procs []*proc
	var edgeHTTP string
	net := loopbackNet()
	for _, n := range []struct{ name, role, env string }{{"cloud1", "cloud", "cloud.env.example"}, {"edge1", "edge", "edge.env.example"}} {
		run(t, bin, "ca", "issue", "--dir", tls, "--node", n.name, "--role", n.role)
		env := readEnvFile(t, filepath.Join("systemd", n.env))
		for k, v := range env {
			env[k] = strings.ReplaceAll(v, "10.0.0.", net)
		}
		// %d: the credentials the unit loads, under their credential IDs.
		creds := filepath.Join(dir, "credentials", n.name)
		for _, lc := range unit["LoadCredential"] {
			id, path, ok := strings.Cut(expandSpecifiers(lc, n.name, creds), ":")
			if !ok || !strings.HasPrefix(path, "/etc/edgesplit/tls/") {
				t.Fatalf("LoadCredential=%s: want ID:/etc/edgesplit/tls/FILE", lc)
			}
			b, err := os.ReadFile(filepath.Join(dir, path))
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(creds, id), b, 0o400)
		}
		if len(unit["ExecStart"]) != 1 {
			t.Fatalf("%d ExecStart lines", len(unit["ExecStart"]))
		}
		argv, err := expandExec(expandSpecifiers(unit["ExecStart"][0], n.name, creds), env)
		if err != nil {
			t.Fatal(err)
		}
		if argv[0] != "/usr/local/bin/edgesplit" {
			t.Fatalf("ExecStart runs %s", argv[0])
		}
		args := argv[1:]
		for i, a := range args {
			args[i] = strings.ReplaceAll(a, "/var/log/edgesplit", logs)
		}
		knownFlags(t, bin, []string{"node"}, args)
		t.Logf("%s: edgesplit %s", n.name, strings.Join(args, " "))
		procs = append(procs, startNode(t, n.name, bin, nil, args))
		if n.role == "edge" {
			edgeHTTP = "https://" + env["EDGESPLIT_HTTP"]
		}
	}
	waitClouds(t, edgeHTTP, 1)
	a := inferCloudOnly(t, edgeHTTP, []int{1, 3, 224, 224})
	t.Logf("edge1 → %s: class %d (model %s, cut %d)", a.Cloud, a.Class, a.Model, a.Cut)
	if _, err := os.Stat(filepath.Join(logs, "edge1-audit.log")); err != nil {
		t.Errorf("the edge's audit log is not where the unit puts it: %v", err)
	}
	for i := len(procs) - 1; i >= 0; i-- {
		if err := procs[i].stop(); err != nil {
			t.Errorf("%s on SIGTERM: %v", procs[i].name, err)
		}
	}
}

// readUnit reads the unit's [Service] section: key → values in order.
func readUnit(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kv := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || l[0] == '#' || l[0] == ';' {
			continue
		}
		if l[0] == '[' {
			section = l
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if ok && section == "[Service]" {
			kv[k] = append(kv[k], v)
		}
	}
	return kv
}

// expandSpecifiers replaces the unit specifiers the unit uses: %i (the
// instance), %d (the credentials folder) and %%.
func expandSpecifiers(s, instance, creds string) string {
	return strings.NewReplacer("%%", "%", "%i", instance, "%d", creds).Replace(s)
}

// expandExec splits an ExecStart= line into words and substitutes the
// environment as systemd.service(5) says: ${VAR} inside a word becomes the
// value (one word, even if empty or with spaces); a word that is exactly
// $VAR becomes the value split at whitespace (no word if empty).
func expandExec(line string, env map[string]string) ([]string, error) {
	var argv []string
	braced := regexp.MustCompile(`\$\{(\w+)\}`)
	for _, w := range strings.Fields(line) {
		if m := regexp.MustCompile(`^\$(\w+)$`).FindStringSubmatch(w); m != nil {
			argv = append(argv, strings.Fields(env[m[1]])...)
			continue
		}
		w = braced.ReplaceAllStringFunc(w, func(v string) string { return env[v[2:len(v)-1]] })
		if strings.ContainsAny(w, "$%") {
			return nil, fmt.Errorf("ExecStart word %q left unexpanded", w)
		}
		argv = append(argv, w)
	}
	return argv, nil
}

// readEnvFile reads an EnvironmentFile= (KEY=VALUE lines, # comments).
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("%s: line %q is not KEY=VALUE", path, l)
		}
		env[k] = v
	}
	return env
}

func writeFile(t *testing.T, path string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
}

// copyTree copies regular files and symlinks of src into dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, to)
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(to, b, 0o644)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
