package deploy

import (
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// dfInstr is one Dockerfile instruction (continuation lines joined).
type dfInstr struct {
	cmd  string // upper case: FROM, RUN, COPY, …
	args string
	line int
}

// dockerfile is Dockerfile's instructions split into build stages.
type dockerfile struct {
	stages [][]dfInstr // each starts with its FROM
}

func readDockerfile() (*dockerfile, error) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		return nil, err
	}
	return parseDockerfile(string(b))
}

// parseDockerfile reads the instruction form the Dockerfile reference
// defines: comments and blank lines skipped, a trailing backslash continues
// the instruction on the next line, the keyword is case-insensitive.
func parseDockerfile(s string) (*dockerfile, error) {
	df := &dockerfile{}
	var cur strings.Builder
	start := 0
	for i, l := range strings.Split(s, "\n") {
		t := strings.TrimSpace(l)
		if cur.Len() == 0 && (t == "" || strings.HasPrefix(t, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		cont := strings.HasSuffix(t, "\\")
		cur.WriteString(strings.TrimSuffix(t, "\\"))
		if cont {
			cur.WriteString(" ")
			continue
		}
		kw, args, _ := strings.Cut(cur.String(), " ")
		in := dfInstr{strings.ToUpper(kw), strings.TrimSpace(args), start}
		cur.Reset()
		if in.cmd == "FROM" {
			df.stages = append(df.stages, nil)
		} else if len(df.stages) == 0 {
			if in.cmd != "ARG" {
				return nil, fmt.Errorf("line %d: %s before the first FROM", in.line, in.cmd)
			}
			continue
		}
		if !slices.Contains([]string{"FROM", "RUN", "COPY", "ADD", "WORKDIR", "ENV", "ARG", "USER", "EXPOSE", "ENTRYPOINT", "CMD", "LABEL", "VOLUME", "HEALTHCHECK", "STOPSIGNAL", "SHELL", "ONBUILD"}, in.cmd) {
			return nil, fmt.Errorf("line %d: unknown instruction %q", in.line, kw)
		}
		df.stages[len(df.stages)-1] = append(df.stages[len(df.stages)-1], in)
	}
	if cur.Len() > 0 {
		return nil, fmt.Errorf("line %d: continuation at end of file", start)
	}
	if len(df.stages) == 0 {
		return nil, fmt.Errorf("no FROM")
	}
	return df, nil
}

func (df *dockerfile) find(stage int, cmd string) []dfInstr {
	var out []dfInstr
	for _, in := range df.stages[stage] {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// buildCommand returns the builder stage's `go build` RUN and its -o path.
func (df *dockerfile) buildCommand() (cmdline, out string, err error) {
	for _, in := range df.find(0, "RUN") {
		if strings.Contains(in.args, "go build") {
			m := regexp.MustCompile(`-o\s+(\S+)`).FindStringSubmatch(in.args)
			if m == nil {
				return "", "", fmt.Errorf("line %d: go build without -o", in.line)
			}
			return in.args, m[1], nil
		}
	}
	return "", "", fmt.Errorf("the first stage has no RUN … go build")
}

// user returns the final stage's USER uid (numeric, as Kubernetes'
// runAsNonRoot needs).
func (df *dockerfile) user() (int, error) {
	us := df.find(len(df.stages)-1, "USER")
	if len(us) != 1 {
		return 0, fmt.Errorf("final stage has %d USER instructions, want 1", len(us))
	}
	uid, _, _ := strings.Cut(us[0].args, ":")
	return strconv.Atoi(uid)
}

// exposed returns the final stage's EXPOSE ports as "7946/tcp" strings.
func (df *dockerfile) exposed() []string {
	var ps []string
	for _, in := range df.find(len(df.stages)-1, "EXPOSE") {
		for _, p := range strings.Fields(in.args) {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			ps = append(ps, strings.ToLower(p))
		}
	}
	slices.Sort(ps)
	return ps
}

// TestDockerfile checks the image recipe: a Go builder stage of the
// module's Go version, a small non-golang runtime stage running a numeric
// non-root user, and the one binary copied from the builder as the
// entrypoint. The build command itself runs (edgesplitBin): the binary it
// makes must be static, since the runtime image has no C library.
func TestDockerfile(t *testing.T) {
	df, err := readDockerfile()
	if err != nil {
		t.Fatal(err)
	}
	if len(df.stages) < 2 {
		t.Fatalf("%d stages, want a builder and a runtime stage", len(df.stages))
	}
	from := strings.Fields(df.stages[0][0].args)
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	gover := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if len(from) != 3 || !strings.HasPrefix(from[0], "golang:"+string(gover[1])) || !strings.EqualFold(from[1], "AS") {
		t.Errorf("builder stage FROM %q, want golang:%s… AS NAME (go.mod's Go version)", df.stages[0][0].args, gover[1])
	}
	builder := from[len(from)-1]
	last := len(df.stages) - 1
	final := strings.Fields(df.stages[last][0].args)[0]
	if strings.HasPrefix(final, "golang") {
		t.Errorf("runtime stage is %s: the toolchain image is not a small runtime", final)
	}
	if uid, err := df.user(); err != nil || uid == 0 {
		t.Errorf("runtime USER: uid %d, %v; want a numeric non-root uid", uid, err)
	}
	_, out, err := df.buildCommand()
	if err != nil {
		t.Fatal(err)
	}
	cp := df.find(last, "COPY")
	if len(cp) != 1 {
		t.Fatalf("runtime stage has %d COPY, want exactly the binary", len(cp))
	}
	f := strings.Fields(cp[0].args)
	if len(f) != 3 || f[0] != "--from="+builder || f[1] != out {
		t.Errorf("runtime COPY %q, want --from=%s %s DEST", cp[0].args, builder, out)
	}
	ep := df.find(last, "ENTRYPOINT")
	var entry []string
	if len(ep) != 1 || json.Unmarshal([]byte(ep[0].args), &entry) != nil || len(entry) != 1 || len(f) != 3 || entry[0] != f[2] {
		t.Errorf("ENTRYPOINT %v, want the exec form [%q]", ep, f[len(f)-1])
	}
	if len(df.find(last, "RUN")) > 0 {
		t.Errorf("runtime stage runs commands: the distroless image has no shell")
	}
	ign, err := os.ReadFile("Dockerfile.dockerignore")
	if err != nil || !regexp.MustCompile(`(?m)^\.git$`).Match(ign) {
		t.Errorf("Dockerfile.dockerignore should keep .git out of the context (%v)", err)
	}

	bin := edgesplitBin(t)
	ef, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("the binary needs a dynamic loader; the runtime image has none (CGO_ENABLED=0?)")
		}
	}
	if libs, _ := ef.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary links %v", libs)
	}
	if h := run(t, bin, "node", "--help"); !strings.Contains(h, "--gossip-key-file") {
		t.Errorf("node --help of the built binary:\n%s", h)
	}
}
