package deploy

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/validation"
)

// manifests are the decoded Kubernetes objects of deploy/k8s.
type manifests struct {
	services     map[string]*corev1.Service
	secrets      map[string]*corev1.Secret
	statefulSets map[string]*appsv1.StatefulSet
	daemonSets   map[string]*appsv1.DaemonSet
}

// decodeStrict decodes a multi-document YAML stream with the API
// machinery's strict serializer (the decoder kube-apiserver uses with
// field validation Strict): an unknown or duplicated field, a field of the
// wrong case or type, or a kind/apiVersion the scheme does not know fails.
func decodeStrict(t *testing.T, name string, b []byte, into *manifests) {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := appsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	ser := json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme, json.SerializerOptions{Yaml: true, Strict: true})
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^#.*$`).ReplaceAllString(doc, "")) == "" {
			continue
		}
		obj, gvk, err := ser.Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Errorf("%s document %d: %v", name, i, err)
			if obj == nil || !runtime.IsStrictDecodingError(err) {
				continue
			}
		}
		switch o := obj.(type) {
		case *corev1.Service:
			into.services[o.Name] = o
		case *corev1.Secret:
			into.secrets[o.Name] = o
		case *appsv1.StatefulSet:
			into.statefulSets[o.Name] = o
		case *appsv1.DaemonSet:
			into.daemonSets[o.Name] = o
		default:
			t.Errorf("%s document %d: unexpected kind %v", name, i, gvk)
		}
	}
}

// loadManifests decodes every deploy/k8s/*.yaml and the Secrets that
// secrets.sh makes from a fresh CA (made in caDir).
func loadManifests(t *testing.T, bin, caDir string) *manifests {
	t.Helper()
	m := &manifests{map[string]*corev1.Service{}, map[string]*corev1.Secret{}, map[string]*appsv1.StatefulSet{}, map[string]*appsv1.DaemonSet{}}
	files, _ := filepath.Glob("k8s/*.yaml")
	if len(files) == 0 {
		t.Fatal("no k8s/*.yaml")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		decodeStrict(t, f, b, m)
	}
	run(t, bin, "ca", "init", "--dir", caDir)
	useAPI(t, filepath.Join(caDir, "ca.crt"), newToken(t, bin, filepath.Join(caDir, "api-clients.yaml")))
	out, err := exec.Command("bash", "k8s/secrets.sh", caDir).Output()
	if err != nil {
		t.Fatalf("k8s/secrets.sh: %v", err)
	}
	decodeStrict(t, "secrets.sh output", out, m)
	return m
}

// pod is one workload's pod template with its kind and name.
type pod struct {
	kind, name string
	labels     map[string]string
	spec       *corev1.PodSpec
}

func (m *manifests) pods() []pod {
	var ps []pod
	for n, s := range m.statefulSets {
		ps = append(ps, pod{"StatefulSet", n, s.Spec.Template.Labels, &s.Spec.Template.Spec})
	}
	for n, d := range m.daemonSets {
		ps = append(ps, pod{"DaemonSet", n, d.Spec.Template.Labels, &d.Spec.Template.Spec})
	}
	slices.SortFunc(ps, func(a, b pod) int { return strings.Compare(a.name, b.name) })
	return ps
}

func selects(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return len(sel) > 0
}

// TestKubernetesManifests decodes every manifest strictly into the
// Kubernetes API types (k8s.io/api), then checks what the API server's
// validation and the cluster would: selectors match their pod labels, the
// StatefulSet's serviceName is a headless Service that publishes not-ready
// pods (for the first join), every Service port targets a named port of
// the pods it selects, every volume mount, secret key, $(VAR) and probe
// port resolves, each container runs edgesplit with flags the binary has,
// as the Dockerfile's non-root uid, with ports equal to the image's EXPOSE.
func TestKubernetesManifests(t *testing.T) {
	bin := edgesplitBin(t)
	m := loadManifests(t, bin, filepath.Join(t.TempDir(), "ca"))
	df, err := readDockerfile()
	if err != nil {
		t.Fatal(err)
	}
	uid, err := df.user()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.statefulSets) != 1 || len(m.daemonSets) != 1 {
		t.Fatalf("%d StatefulSets, %d DaemonSets: want the clouds' and the edges'", len(m.statefulSets), len(m.daemonSets))
	}
	for _, s := range m.statefulSets {
		if !selects(s.Spec.Selector.MatchLabels, s.Spec.Template.Labels) {
			t.Errorf("StatefulSet %s: selector %v does not match its pods %v", s.Name, s.Spec.Selector.MatchLabels, s.Spec.Template.Labels)
		}
		svc := m.services[s.Spec.ServiceName]
		switch {
		case svc == nil:
			t.Errorf("StatefulSet %s: serviceName %q is no Service here", s.Name, s.Spec.ServiceName)
		case svc.Spec.ClusterIP != corev1.ClusterIPNone || !svc.Spec.PublishNotReadyAddresses:
			t.Errorf("Service %s: want headless (clusterIP None) with publishNotReadyAddresses", svc.Name)
		case !selects(svc.Spec.Selector, s.Spec.Template.Labels):
			t.Errorf("Service %s does not select StatefulSet %s's pods", svc.Name, s.Name)
		}
	}
	for _, d := range m.daemonSets {
		if !selects(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
			t.Errorf("DaemonSet %s: selector does not match its pods", d.Name)
		}
	}
	for _, svc := range m.services {
		n := 0
		for _, p := range m.pods() {
			if !selects(svc.Spec.Selector, p.labels) {
				continue
			}
			n++
			for _, sp := range svc.Spec.Ports {
				if !hasPort(p.spec, sp.TargetPort.StrVal, sp.Protocol) {
					t.Errorf("Service %s port %s: %s pods have no %s port %q", svc.Name, sp.Name, p.name, sp.Protocol, sp.TargetPort.StrVal)
				}
			}
		}
		if n == 0 {
			t.Errorf("Service %s selects no pods", svc.Name)
		}
	}
	expose := df.exposed()
	for _, p := range m.pods() {
		sc := p.spec.SecurityContext
		if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser != int64(uid) {
			t.Errorf("%s: pod securityContext should be runAsNonRoot with runAsUser %d (the image's USER)", p.name, uid)
		}
		if p.spec.AutomountServiceAccountToken == nil || *p.spec.AutomountServiceAccountToken {
			t.Errorf("%s: the node needs no API token: automountServiceAccountToken false", p.name)
		}
		vols := map[string]corev1.Volume{}
		for _, v := range p.spec.Volumes {
			vols[v.Name] = v
			if v.Secret != nil {
				sec := m.secrets[v.Secret.SecretName]
				if sec == nil {
					t.Errorf("%s: volume %s mounts Secret %s, which secrets.sh does not make", p.name, v.Name, v.Secret.SecretName)
					continue
				}
				for _, it := range v.Secret.Items {
					if _, ok := sec.Data[it.Key]; !ok {
						t.Errorf("%s: Secret %s has no key %s", p.name, sec.Name, it.Key)
					}
				}
			}
		}
		for _, c := range append(slices.Clone(p.spec.InitContainers), p.spec.Containers...) {
			where := p.name + "/" + c.Name
			if errs := validation.IsDNS1123Label(c.Name); len(errs) > 0 {
				t.Errorf("%s: %v", where, errs)
			}
			if c.SecurityContext == nil || c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation ||
				c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
				t.Errorf("%s: want allowPrivilegeEscalation false and readOnlyRootFilesystem true", where)
			}
			for _, vm := range c.VolumeMounts {
				if _, ok := vols[vm.Name]; !ok {
					t.Errorf("%s mounts volume %s, which the pod lacks", where, vm.Name)
				}
			}
			env := map[string]bool{}
			for _, e := range c.Env {
				env[e.Name] = true
			}
			for _, a := range c.Args {
				for _, ref := range regexp.MustCompile(`\$\((\w+)\)`).FindAllStringSubmatch(a, -1) {
					if !env[ref[1]] {
						t.Errorf("%s: args use $(%s), which its env lacks", where, ref[1])
					}
				}
			}
			sub := c.Args[:1]
			if len(c.Args) > 1 && c.Args[0] == "ca" {
				sub = c.Args[:2]
			}
			knownFlags(t, bin, sub, c.Args)
			var ports []string
			for _, cp := range c.Ports {
				if errs := validation.IsValidPortName(cp.Name); len(errs) > 0 {
					t.Errorf("%s port %s: %v", where, cp.Name, errs)
				}
				ports = append(ports, strconv.Itoa(int(cp.ContainerPort))+"/"+strings.ToLower(string(cp.Protocol)))
			}
			slices.Sort(ports)
			if len(c.Ports) > 0 && !slices.Equal(ports, expose) {
				t.Errorf("%s: container ports %v, the image EXPOSEs %v", where, ports, expose)
			}
			for _, pr := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
				if pr != nil && pr.HTTPGet != nil && !hasPort(p.spec, pr.HTTPGet.Port.StrVal, corev1.ProtocolTCP) {
					t.Errorf("%s: probe port %q is no TCP port of the container", where, pr.HTTPGet.Port.StrVal)
				}
			}
		}
	}
}

func hasPort(spec *corev1.PodSpec, name string, proto corev1.Protocol) bool {
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			if p.Name == name && p.Protocol == proto {
				return true
			}
		}
	}
	return false
}

// TestKubernetesPodsOnLoopback runs the pods the manifests describe as
// processes, one loopback address per pod (the pod IP): 2 cloud replicas
// and 1 edge. Each pod's Secret volumes are filled from secrets.sh's
// output (only the items listed, in their mode), its emptyDirs are empty
// folders, $(POD_NAME)/$(POD_IP) come from the downward API fields the env
// names, and the headless Service name in --join resolves, as its DNS
// would, to every cloud pod's address. The init container must issue the
// pod's certificate from the read-only CA volume, the node container must
// start with it; then the readiness and liveness probes answer 200, the
// edge sees both clouds and offloads an inference to one.
func TestKubernetesPodsOnLoopback(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test skipped with -short")
	}
	bin := edgesplitBin(t)
	m := loadManifests(t, bin, filepath.Join(t.TempDir(), "ca"))
	var ss *appsv1.StatefulSet
	for _, s := range m.statefulSets {
		ss = s
	}
	type inst struct {
		name, ip string
		p        pod
	}
	var clouds, all []inst
	net := loopbackNet()
	for i := range int(*ss.Spec.Replicas) {
		c := inst{fmt.Sprintf("%s-%d", ss.Name, i), fmt.Sprintf("%s%d", net, 41+i), pod{"StatefulSet", ss.Name, ss.Spec.Template.Labels, &ss.Spec.Template.Spec}}
		clouds = append(clouds, c)
	}
	all = append(all, clouds...)
	for _, d := range m.daemonSets {
		all = append(all, inst{d.Name + "-x7k2q", net + "51", pod{"DaemonSet", d.Name, d.Spec.Template.Labels, &d.Spec.Template.Spec}})
	}
	var cloudAddrs []string
	for _, c := range clouds {
		cloudAddrs = append(cloudAddrs, c.ip)
	}
	dns := map[string][]string{ss.Spec.ServiceName: cloudAddrs}

	var procs []*proc
	var edgeBase string
	for _, in := range all {
		root := filepath.Join(t.TempDir(), in.name)
		vol := map[string]string{}
		for _, v := range in.p.spec.Volumes {
			dir := filepath.Join(root, "volumes", v.Name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			vol[v.Name] = dir
			if v.Secret == nil {
				continue
			}
			mode := os.FileMode(0o644)
			if v.Secret.DefaultMode != nil {
				mode = os.FileMode(*v.Secret.DefaultMode)
			}
			for _, it := range v.Secret.Items {
				writeFile(t, filepath.Join(dir, it.Path), m.secrets[v.Secret.SecretName].Data[it.Key], mode)
			}
			os.Chmod(dir, 0o555) // secret volumes are read-only
		}
		fields := map[string]string{"metadata.name": in.name, "status.podIP": in.ip}
		argsOf := func(c corev1.Container) []string {
			env := map[string]string{}
			for _, e := range c.Env {
				env[e.Name] = e.Value
				if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
					env[e.Name] = fields[e.ValueFrom.FieldRef.FieldPath]
				}
			}
			var args []string
			for _, a := range c.Args {
				a = regexp.MustCompile(`\$\((\w+)\)`).ReplaceAllStringFunc(a, func(r string) string { return env[r[2:len(r)-1]] })
				for _, vm := range c.VolumeMounts {
					if a == vm.MountPath || strings.HasPrefix(a, vm.MountPath+"/") {
						a = vol[vm.Name] + strings.TrimPrefix(a, vm.MountPath)
					}
				}
				if host, port, ok := strings.Cut(a, ":"); ok && dns[host] != nil {
					var rs []string
					for _, ip := range dns[host] {
						rs = append(rs, ip+":"+port)
					}
					a = strings.Join(rs, ",")
				}
				args = append(args, a)
			}
			return args
		}
		for _, c := range in.p.spec.InitContainers {
			out, err := exec.Command(bin, argsOf(c)...).CombinedOutput()
			if err != nil {
				t.Fatalf("%s init container %s: %v\n%s", in.name, c.Name, err, out)
			}
			t.Logf("%s/%s: %s", in.name, c.Name, bytes.TrimSpace(out))
		}
		c := in.p.spec.Containers[0]
		procs = append(procs, startNode(t, in.name, bin, nil, argsOf(c)))
		for _, pr := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
			httpOK(t, fmt.Sprintf("%s://%s:%d%s", strings.ToLower(string(pr.HTTPGet.Scheme)), in.ip, portNumber(c, pr.HTTPGet.Port.StrVal), pr.HTTPGet.Path))
		}
		if in.p.kind == "DaemonSet" {
			edgeBase = fmt.Sprintf("https://%s:%d", in.ip, portNumber(c, "http"))
		}
	}
	waitClouds(t, edgeBase, len(clouds))
	a := inferCloudOnly(t, edgeBase, []int{1, 3, 224, 224})
	t.Logf("edge → %s: class %d (model %s, cut %d)", a.Cloud, a.Class, a.Model, a.Cut)
	for i := len(procs) - 1; i >= 0; i-- {
		if err := procs[i].stop(); err != nil {
			t.Errorf("%s on SIGTERM: %v", procs[i].name, err)
		}
	}
}

func portNumber(c corev1.Container, name string) int32 {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}
