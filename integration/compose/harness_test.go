//go:build compose

package compose

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/remaphore/remaphore/internal/natstest"
)

// The scenarios, in the order they run. -scenarios picks some of them;
// -run 'TestCompose/NAME' works too, but a misspelt -run matches nothing
// silently, while a misspelt -scenarios fails.
var scenarioNames = []string{"handoff", "request", "nats-failover", "network-cut", "auditor-restart", "intruder"}

var scenariosFlag = flag.String("scenarios", "", "comma-separated scenarios to run (default all: "+strings.Join(scenarioNames, ",")+")")

// Who is who: each node's destination, its servers in failover order, and
// its NATS role in the least-privilege layout (auth.conf.tmpl).
var (
	nodes       = []string{"auditor", "uploader", "dl-east", "dl-west", "dl-paris", "intruder"}
	downloaders = []string{"dl-east", "dl-west", "dl-paris"}
	services    = []string{"nats1", "nats2", "nats3", "auditor", "uploader", "dl-east", "dl-west", "dl-paris", "intruder"}
	natsServers = []string{"nats1", "nats2", "nats3"}
	dest        = map[string]string{
		"auditor":  "com.remaphore.audit",
		"uploader": "com.remaphore.us.uploader",
		"dl-east":  "com.remaphore.us.east",
		"dl-west":  "com.remaphore.us.west",
		"dl-paris": "com.remaphore.eu.paris",
		"intruder": "com.remaphore.xx.intruder",
	}
	// dl-east and the uploader list nats1 first: nats-failover kills nats1
	// under a waiting dl-east, and the uploader's send must then go through
	// another server.
	serverOrder = map[string][]string{
		"auditor":  {"nats3", "nats2", "nats1"},
		"uploader": {"nats1", "nats2", "nats3"},
		"dl-east":  {"nats1", "nats2", "nats3"},
		"dl-west":  {"nats2", "nats3", "nats1"},
		"dl-paris": {"nats3", "nats1", "nats2"},
		"intruder": {"nats2", "nats1", "nats3"},
	}
	// The downloaders only wait and answer, so they may not publish a
	// message. The intruder holds the credentials of a host that both
	// sends and waits: the most a compromised host holds.
	role = map[string]string{
		"auditor":  "AUDITOR",
		"uploader": "SENDER",
		"dl-east":  "RECEIVER",
		"dl-west":  "RECEIVER",
		"dl-paris": "RECEIVER",
		"intruder": "SENDER_RECEIVER",
	}
)

// maxConsumers is the account's consumer cap; the stream's own
// (max_consumers in every config) may not exceed it, or the server refuses
// to create the stream.
const maxConsumers = 1000

// auditConsumer is the auditor's durable consumer (its -name in
// audit.Dockerfile), which the servers deny to every other user.
const auditConsumer = "remaphore-audit"

// harness is one run: its stack, its files and its background commands.
type harness struct {
	t       *testing.T
	t0      time.Time
	root    string // the repository
	cdir    string // integration/compose
	gen     string // configs, keys and outputs of this run (git-ignored)
	out     string // gen/out: each command's stdout, stderr
	compose []string
	project string
	cid     map[string]string // service → container id
	pub     map[string]string // node → its remaphore public key

	mu    sync.Mutex
	procs []*proc

	teardownOnce sync.Once
}

// TestCompose builds the images, writes fresh keys and configs, starts the
// stack and runs each scenario as a subtest. The stack is torn down at the
// end, on failure, on ctrl-c and shortly before the test's -timeout too.
func TestCompose(t *testing.T) {
	selected := selectScenarios(t)
	h := &harness{t: t, t0: time.Now(), cid: map[string]string{}, pub: map[string]string{}}
	h.setup()
	for _, name := range scenarioNames {
		if !slices.Contains(selected, name) {
			continue
		}
		t.Run(name, func(t *testing.T) {
			ts := time.Now()
			h.tlogf(t, "scenario %s", name)
			scenarios[name](h, t)
			h.tlogf(t, "scenario %s took %s", name, time.Since(ts).Round(time.Second))
		})
	}
}

var scenarios = map[string]func(*harness, *testing.T){
	"handoff":         (*harness).handoff,
	"request":         (*harness).request,
	"nats-failover":   (*harness).natsFailover,
	"network-cut":     (*harness).networkCut,
	"auditor-restart": (*harness).auditorRestart,
	"intruder":        (*harness).intruder,
}

func selectScenarios(t *testing.T) []string {
	if *scenariosFlag == "" {
		return scenarioNames
	}
	var sel []string
	for s := range strings.SplitSeq(*scenariosFlag, ",") {
		if !slices.Contains(scenarioNames, s) {
			t.Fatalf("unknown scenario %q (the scenarios are: %s)", s, strings.Join(scenarioNames, " "))
		}
		sel = append(sel, s)
	}
	return sel
}

// logf is progress with the time since the start.
func (h *harness) logf(format string, args ...any) {
	h.t.Helper()
	h.tlogf(h.t, format, args...)
}

// tlogf is logf in a scenario's subtest.
func (h *harness) tlogf(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf("[%3ds] %s", int(time.Since(h.t0).Seconds()), fmt.Sprintf(format, args...))
}

// ---- set-up -----------------------------------------------------------------

func (h *harness) setup() {
	t := h.t
	var err error
	if h.cdir, err = os.Getwd(); err != nil {
		t.Fatal(err)
	}
	h.root = filepath.Dir(filepath.Dir(h.cdir))
	h.gen = filepath.Join(h.cdir, "gen")
	h.out = filepath.Join(h.gen, "out")
	lockCheckout(t, h.cdir)

	switch {
	case exec.Command("docker", "compose", "version").Run() == nil:
		h.compose = []string{"docker", "compose"}
	case exec.Command("docker-compose", "version").Run() == nil:
		h.compose = []string{"docker-compose"}
	default:
		t.Fatal("neither 'docker compose' nor 'docker-compose' is installed")
	}
	if err := exec.Command("docker", "info").Run(); err != nil {
		t.Fatal("no Docker engine answers 'docker info'")
	}
	h.project = fmt.Sprintf("remaphore-ct-%d-%d", time.Now().Unix(), os.Getpid())
	if stale := h.staleProjects(); len(stale) > 0 {
		h.logf("warning: containers of earlier runs killed before they could clean up: %s; remove them with: "+
			"docker rm -f $(docker ps -aq --filter label=com.docker.compose.project=PROJECT), then docker network prune / docker volume prune as fits",
			strings.Join(stale, " "))
	}

	h.build()
	h.generate()

	// From here on there is something to tear down.
	t.Cleanup(func() { h.teardown(t.Failed(), h.logf) })
	h.watchInterrupts()

	// The images are built with docker build, not compose build: recent
	// `docker compose` versions need buildx to build, which the engine may
	// lack. docker-compose.yml names the same Dockerfiles and tags.
	h.logf("building the images (FROM scratch), tag %s", h.project)
	buildLog := filepath.Join(h.gen, "build.log")
	for _, img := range []string{"nats", "remaphore", "audit"} {
		if err := h.runLogged(buildLog, "docker", "build", "-f", filepath.Join(h.cdir, img+".Dockerfile"),
			"-t", "remaphore-compose/"+img+":"+h.project, h.cdir); err != nil {
			t.Fatalf("docker build of %s.Dockerfile failed; see %s", img, buildLog)
		}
	}
	// Compose mounts secrets as they are on the host (it cannot set their
	// owner), and remaphore refuses a config or credentials file owned by a
	// user other than root or itself, as ssh does. The containers run as
	// root: when the test is not root, give the files to root with a
	// throwaway container (a rootless engine maps its root to this user:
	// there the files already show as root's, and the chown changes
	// nothing). They stay deletable: gen/ is this user's directory.
	if os.Getuid() != 0 {
		if err := h.runLogged(buildLog, "docker", "run", "--rm", "--network", "none", "-v", h.gen+":/gen",
			"remaphore-compose/remaphore:"+h.project, "sh", "-c", "chown 0:0 /gen/*.conf /gen/*.nk"); err != nil {
			t.Fatalf("could not give the generated configs to root; see %s", buildLog)
		}
	}

	h.logf("starting the NATS cluster, the auditor and the nodes with %s, project %s", strings.Join(h.compose, " "), h.project)
	upLog := filepath.Join(h.gen, "up.log")
	if err := h.runLogged(upLog, h.composeArgs(append([]string{"up", "-d", "--no-build"}, services...)...)...); err != nil {
		t.Fatalf("compose up failed; see %s", upLog)
	}
	for _, s := range services {
		id, err := h.output(h.composeArgs("ps", "-q", s)...)
		if id = strings.TrimSpace(id); err != nil || id == "" {
			t.Fatalf("no container for service %s (%v)", s, err)
		}
		h.cid[s] = id
	}

	// In the least-privilege layout only the auditor's NATS user may create
	// the stream (replicas: 3, which needs all three servers): the cluster
	// is ready when the auditor is. Until then it exits with a NATS error
	// and Docker starts it again (restart: unless-stopped).
	h.logf("waiting for the JetStream cluster and the auditor (which creates the stream)")
	if !poll(90*time.Second, 500*time.Millisecond, h.auditorReady) {
		tail, _ := h.output("docker", "logs", "--tail", "3", h.cid["auditor"])
		t.Fatalf("the auditor did not get ready within 90s: %s", tail)
	}
	// A sender's first message: the stream takes it.
	var startErr error
	if !poll(30*time.Second, time.Second, func() bool {
		_, startErr = h.send("start", "uploader", "-s", "-t", "5s", "-u", "harness-start", "-D", "com.remaphore.nowhere", "harness start")
		return startErr == nil
	}) {
		t.Fatalf("the uploader could not store a message within 30s: %v", startErr)
	}
	h.logf("stack ready")
}

func (h *harness) auditorReady() bool {
	b, _ := exec.Command("docker", "logs", h.cid["auditor"]).CombinedOutput()
	return bytes.Contains(b, []byte("msg=ready"))
}

// staleProjects lists the harness projects whose containers are still
// there: runs killed before they could tear down.
func (h *harness) staleProjects() []string {
	o, _ := h.output("docker", "ps", "-a", "--filter", "label=com.docker.compose.project",
		"--format", `{{.Label "com.docker.compose.project"}}`)
	var stale []string
	for p := range strings.FieldsSeq(o) {
		if strings.HasPrefix(p, "remaphore-ct-") && !slices.Contains(stale, p) {
			stale = append(stale, p)
		}
	}
	return stale
}

// build writes the static binaries and busybox into integration/compose/bin/,
// the images' build context.
func (h *harness) build() {
	t := h.t
	bin := filepath.Join(h.cdir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	h.logf("building remaphore, remaphore-audit and nats-server (static, CGO_ENABLED=0)")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin+"/",
		"./cmd/remaphore", "./cmd/remaphore-audit", "github.com/nats-io/nats-server/v2")
	cmd.Dir = h.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build failed: %v\n%s", err, o)
	}
	// Debian's busybox is dynamically linked and cannot run in a FROM
	// scratch image; busybox-static replaces it (scripts/compose-test.sh
	// installs it when it runs as root).
	const busybox = "/bin/busybox"
	if err := checkStatic(busybox); err != nil {
		t.Fatalf("%v: install Debian's busybox-static (apt-get install busybox-static), the images' shell", err)
	}
	b, err := os.ReadFile(busybox)
	if err == nil {
		err = os.WriteFile(filepath.Join(bin, "busybox"), b, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// checkStatic fails when the file is missing or asks for a dynamic loader.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s is missing or not an executable (%v)", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked and cannot run in a FROM scratch image", path)
		}
	}
	return nil
}

// generate writes every node's NATS nkey seed and remaphore config, and
// the three servers' configs, into gen/ (mode 700, each file 600).
func (h *harness) generate() {
	t := h.t
	if err := os.RemoveAll(h.gen); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(h.out, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(h.gen, 0o700); err != nil {
		t.Fatal(err)
	}
	h.logf("writing configs with fresh keys into %s (remaphore -C, natstest.NewUser)", h.gen)

	// One NATS user per node: its seed is that container's credentials
	// file; the servers know only the public keys, each with its role.
	var users []string
	for _, n := range nodes {
		u := natstest.NewUser(t, h.gen)
		if err := os.Rename(u.SeedFile, filepath.Join(h.gen, n+".nk")); err != nil {
			t.Fatal(err)
		}
		users = append(users, "      # "+n, natstest.UserLine(u.Public, role[n]))
	}
	auth := natstest.Layout{Users: users, MaxConsumers: maxConsumers, MaxFile: "10GB", MaxConnections: 100,
		AuditConsumer: auditConsumer}.Render(h.readTemplate("auth.conf.tmpl", strings.NewReplacer(), nil))
	for i, name := range natsServers {
		var routes []string
		for j, other := range natsServers {
			if i != j {
				routes = append(routes, "    nats://"+other+":6222")
			}
		}
		conf := h.readTemplate("nats.conf.tmpl", strings.NewReplacer("@NAME@", name),
			map[string]string{"@ROUTES@": strings.Join(routes, "\n")})
		h.write(name+".conf", conf+auth)
	}

	for _, n := range nodes {
		h.write(n+".conf", h.nodeConfig(n))
	}
	// Who trusts whom: the downloaders trust the uploader for ping; the
	// uploader trusts the downloaders' answers to its requests; the
	// auditor trusts all four. No one lists the intruder.
	peer := func(n string) string { return dest[n] + " " + h.pub[n] + " [ping]\n" }
	up := "[ Peers ]\n"
	for _, d := range downloaders {
		up += peer(d)
	}
	h.appendTo("uploader.conf", up)
	for _, d := range downloaders {
		h.appendTo(d+".conf", "[ Peers ]\n"+peer("uploader"))
	}
	aud := "[ Peers ]\n" + peer("uploader")
	for _, d := range downloaders {
		aud += peer(d)
	}
	h.appendTo("auditor.conf", aud)
}

// nodeConfig is `remaphore -C`'s config with the node's servers,
// credentials and destination, allow_skew 30s (for network-cut), three
// replicas and the account's consumer cap, and without its sample peers.
// The auditor's signs nothing: no private key, but its database.
func (h *harness) nodeConfig(n string) string {
	t := h.t
	o, err := h.output(filepath.Join(h.cdir, "bin", "remaphore"), "-C")
	if err != nil {
		t.Fatalf("remaphore -C: %v", err)
	}
	var lines []string
	seen := map[string]bool{}
lines:
	for l := range strings.Lines(o) {
		l = strings.TrimSuffix(l, "\n")
		key, _, _ := strings.Cut(l, ": ")
		switch {
		case key == "server":
			for _, s := range serverOrder[n] {
				lines = append(lines, "server: nats://"+s+":4222")
			}
		case key == "credentials":
			lines = append(lines, "credentials: /etc/remaphore/nats.nk")
		case key == "destination":
			lines = append(lines, "destination: "+dest[n])
		case key == "allow_skew":
			lines = append(lines, "allow_skew: 30s", "replicas: 3", fmt.Sprintf("max_consumers: %d", maxConsumers))
			if n == "auditor" {
				lines = append(lines, "audit_db: /var/lib/remaphore-audit/audit.db")
			}
		case key == "default_identity":
			h.pub[n] = strings.TrimPrefix(l, "default_identity: ")
			if n != "auditor" {
				lines = append(lines, l)
			}
		case strings.HasPrefix(l, "# Local identities") && n == "auditor",
			strings.HasPrefix(l, "# Nodes that may send to this one"):
			break lines // the sample peers (and the auditor's identities)
		default:
			lines = append(lines, l)
			continue
		}
		seen[key] = true
	}
	for _, k := range []string{"server", "credentials", "destination", "allow_skew", "default_identity"} {
		// A silent mismatch would start the nodes on the defaults.
		if !seen[k] {
			t.Fatalf("remaphore -C wrote no %q line; the harness cannot write %s's config from:\n%s", k, n, o)
		}
	}
	if h.pub[n] == "" {
		t.Fatalf("remaphore -C wrote an empty default_identity")
	}
	return strings.Join(lines, "\n") + "\n"
}

// readTemplate reads integration/compose/NAME, replaces the @WORDS@ in it,
// and each line that is only a key of lines by its value.
func (h *harness) readTemplate(name string, r *strings.Replacer, lines map[string]string) string {
	b, err := os.ReadFile(filepath.Join(h.cdir, name))
	if err != nil {
		h.t.Fatal(err)
	}
	var sb strings.Builder
	for l := range strings.Lines(r.Replace(string(b))) {
		if v, ok := lines[strings.TrimSuffix(l, "\n")]; ok {
			l = v + "\n"
		}
		sb.WriteString(l)
	}
	return sb.String()
}

func (h *harness) write(name, s string) {
	if err := os.WriteFile(filepath.Join(h.gen, name), []byte(s), 0o600); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) appendTo(name, s string) {
	f, err := os.OpenFile(filepath.Join(h.gen, name), os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(s)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		h.t.Fatal(err)
	}
}

// ---- teardown ---------------------------------------------------------------

// teardown runs once: at the end of the test (t.Cleanup), or on a signal
// or the -timeout watchdog, where the test's own cleanups would not run.
func (h *harness) teardown(failed bool, logf func(string, ...any)) {
	h.teardownOnce.Do(func() {
		h.mu.Lock()
		for _, p := range h.procs {
			_ = p.cmd.Process.Kill()
		}
		h.mu.Unlock()
		keep := os.Getenv("KEEP") == "1"
		if failed {
			h.collectLogs(logf)
		}
		env := "REMAPHORE_TAG=" + h.project + " COMPOSE_PROFILES=test "
		if keep {
			logf("KEEP=1: the stack is still running; remove it with:")
			logf("  %s%s -p %s down -v --remove-orphans --rmi all", env, strings.Join(h.compose, " "), h.project)
		} else {
			logf("tearing down (down -v --remove-orphans --rmi all)")
			downLog := filepath.Join(h.gen, "down.log")
			if err := h.runLogged(downLog, h.composeArgs("down", "-v", "--remove-orphans", "--rmi", "all", "-t", "5")...); err != nil {
				logf("warning: compose down failed; see %s", downLog)
			}
		}
		if keep || failed {
			logf("kept %s (configs with test keys, outputs in out/, service logs in logs/)", h.gen)
		} else {
			_ = os.RemoveAll(h.gen)
			_ = os.RemoveAll(filepath.Join(h.cdir, "bin"))
		}
		logf("done in %s", time.Since(h.t0).Round(time.Second))
	})
}

// watchInterrupts tears the stack down on ctrl-c (or TERM, HUP) and
// shortly before go test's -timeout kills the test binary: neither runs
// the test's cleanups.
func (h *harness) watchInterrupts() {
	stderr := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "[%3ds] %s\n", int(time.Since(h.t0).Seconds()), fmt.Sprintf(format, args...))
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sig
		stderr("interrupted (%v)", s)
		h.teardown(true, stderr)
		os.Exit(130)
	}()
	if deadline, ok := h.t.Deadline(); ok {
		time.AfterFunc(time.Until(deadline)-time.Minute, func() {
			stderr("FAIL: the test's -timeout is one minute away")
			h.teardown(true, stderr)
			os.Exit(1)
		})
	}
}

func (h *harness) collectLogs(logf func(string, ...any)) {
	logs := filepath.Join(h.gen, "logs")
	_ = os.MkdirAll(logs, 0o700)
	for _, s := range services {
		// docker logs is much quicker than docker-compose (v1) logs.
		argv := []string{"docker", "logs", "-t", h.cid[s]}
		if h.cid[s] == "" {
			argv = h.composeArgs("logs", "--no-color", "-t", s)
		}
		_ = h.runLogged(filepath.Join(logs, s+".log"), argv...)
	}
	logf("service logs in %s, scenario outputs in %s; the last lines of each:", logs, h.out)
	files, _ := filepath.Glob(filepath.Join(logs, "*.log"))
	errs, _ := filepath.Glob(filepath.Join(h.out, "*.err"))
	for _, f := range append(files, errs...) {
		b, _ := os.ReadFile(f)
		if len(b) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		logf("--- %s\n%s", f, strings.Join(lines[max(0, len(lines)-15):], "\n"))
	}
}

// ---- running things ---------------------------------------------------------

func (h *harness) composeArgs(args ...string) []string {
	return append(append(slices.Clone(h.compose), "-p", h.project, "-f", filepath.Join(h.root, "docker-compose.yml")), args...)
}

// command is argv with the run's compose environment: the image tag and the
// test profile (the intruder service).
func (h *harness) command(argv ...string) *exec.Cmd {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = h.root
	cmd.Env = append(os.Environ(), "REMAPHORE_TAG="+h.project, "COMPOSE_PROFILES=test")
	return cmd
}

// output runs argv and returns its stdout; the error carries stderr.
func (h *harness) output(argv ...string) (string, error) {
	cmd := h.command(argv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	o, err := cmd.Output()
	if err != nil {
		err = fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(o), err
}

// runLogged runs argv with its stdout and stderr appended to file.
func (h *harness) runLogged(file string, argv ...string) error {
	f, err := os.OpenFile(file, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := h.command(argv...)
	cmd.Stdout, cmd.Stderr = f, f
	return cmd.Run()
}

// proc is a command running in the background; its stdout and stderr land
// in gen/out/NAME.out and .err.
type proc struct {
	name, outPath, errPath string
	cmd                    *exec.Cmd
	done                   chan struct{}
	rc                     int
}

// bgExec runs argv inside SERVICE's container in the background.
func (h *harness) bgExec(name, svc string, argv ...string) *proc {
	p := &proc{name: name, outPath: filepath.Join(h.out, name+".out"), errPath: filepath.Join(h.out, name+".err"), done: make(chan struct{})}
	p.cmd = h.command(append([]string{"docker", "exec", h.cid[svc]}, argv...)...)
	stdout, err := os.Create(p.outPath)
	if err == nil {
		var stderr *os.File
		if stderr, err = os.Create(p.errPath); err == nil {
			p.cmd.Stdout, p.cmd.Stderr = stdout, stderr
			if err = p.cmd.Start(); err != nil {
				stderr.Close()
			}
		}
		if err != nil {
			stdout.Close()
		}
	}
	if err != nil {
		// Seen as a command that failed at once, with the reason where
		// its stderr would be: bgExec runs in scenarios' subtests, where
		// the harness's t may not stop the test.
		_ = os.WriteFile(p.errPath, []byte(fmt.Sprintf("harness: %s: %v\n", name, err)), 0o600)
		p.rc = -1
		close(p.done)
		return p
	}
	h.mu.Lock()
	h.procs = append(h.procs, p)
	h.mu.Unlock()
	go func() {
		_ = p.cmd.Wait()
		p.rc = p.cmd.ProcessState.ExitCode()
		p.cmd.Stdout.(*os.File).Close()
		p.cmd.Stderr.(*os.File).Close()
		close(p.done)
	}()
	return p
}

// bg runs `remaphore -log info ARGS` in SERVICE in the background.
func (h *harness) bg(name, svc string, args ...string) *proc {
	return h.bgExec(name, svc, append([]string{"remaphore", "-log", "info"}, args...)...)
}

// wait is the exit code once the command has exited, or false at the
// deadline.
func (p *proc) wait(d time.Duration) (int, bool) {
	select {
	case <-p.done:
		return p.rc, true
	case <-time.After(d):
		return 0, false
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// status is wait's answer in words.
func status(rc int, exited bool) string {
	if !exited {
		return "was still running at the deadline"
	}
	return fmt.Sprintf("exited %d", rc)
}

func (p *proc) stdout() string { b, _ := os.ReadFile(p.outPath); return string(b) }
func (p *proc) stderr() string { b, _ := os.ReadFile(p.errPath); return string(b) }

// waitReady waits until each background receiver logs that it listens.
func (h *harness) waitReady(t *testing.T, ps ...*proc) {
	t.Helper()
	for _, p := range ps {
		if !poll(20*time.Second, 100*time.Millisecond, func() bool {
			return strings.Contains(p.stderr(), "msg=ready") || p.exited()
		}) || !strings.Contains(p.stderr(), "msg=ready") {
			rc, exited := p.wait(0)
			t.Fatalf("%s did not get ready (%s): %s", p.name, status(rc, exited), firstLine(p.stderr(), "error", "level=WARN"))
		}
	}
}

// send runs `remaphore ARGS` in SERVICE in the foreground, its outputs in
// gen/out/NAME.out and .err.
func (h *harness) send(name, svc string, args ...string) (*proc, error) {
	p := h.bgExec(name, svc, append([]string{"remaphore"}, args...)...)
	<-p.done
	if p.rc != 0 {
		return p, fmt.Errorf("%s: remaphore %s exited %d: %s", svc, strings.Join(args, " "), p.rc, lastLine(p.stderr(), "remaphore: "))
	}
	return p, nil
}

// firstLine is the first line of s holding any of subs, or "".
func firstLine(s string, subs ...string) string {
	for l := range strings.Lines(s) {
		for _, sub := range subs {
			if strings.Contains(l, sub) {
				return strings.TrimSpace(l)
			}
		}
	}
	return ""
}

// lastLine is the first line that starts with prefix, else the last line.
func lastLine(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return lines[len(lines)-1]
}

// head is the first n bytes of s, for messages.
func head(s string, n int) string { return s[:min(len(s), n)] }

// poll calls ok every step until it is true or d has passed.
func poll(d, step time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if ok() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(step)
	}
}

// ---- the NATS servers' monitoring endpoints ---------------------------------

// http reads a NATS server's monitoring endpoint from inside the network
// (busybox wget in the uploader's container; the port is not published).
// busybox 1.35's wget -T crashes: timeout bounds it instead.
func (h *harness) http(server, path string) ([]byte, error) {
	o, err := exec.Command("docker", "exec", h.cid["uploader"], "timeout", "3", "wget", "-q", "-O", "-",
		"http://"+server+":8222"+path).Output()
	return o, err
}

// jsz is the part of /jsz?streams=true the harness reads.
type jsz struct {
	Meta *struct {
		Leader string `json:"leader"`
	} `json:"meta_cluster"`
	Accounts []struct {
		Streams []struct {
			Name    string `json:"name"`
			Cluster *struct {
				Leader string `json:"leader"`
			} `json:"cluster"`
			State struct {
				LastSeq uint64 `json:"last_seq"`
			} `json:"state"`
		} `json:"stream_detail"`
	} `json:"account_details"`
}

func (h *harness) jsz(server string) (*jsz, error) {
	b, err := h.http(server, "/jsz?streams=true")
	if err != nil {
		return nil, err
	}
	var j jsz
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("%s /jsz: %w", server, err)
	}
	return &j, nil
}

// streamLeader is the REMAPHORE stream's leader as the server sees it.
func (j *jsz) streamLeader() string {
	for _, a := range j.Accounts {
		for _, s := range a.Streams {
			if s.Name == "REMAPHORE" && s.Cluster != nil {
				return s.Cluster.Leader
			}
		}
	}
	return ""
}

// streamLast is the stream's last sequence: the highest any server
// reports (a follower may lag behind the leader).
func (h *harness) streamLast() (uint64, bool) {
	var last uint64
	found := false
	for _, s := range natsServers {
		j, err := h.jsz(s)
		if err != nil {
			continue
		}
		for _, a := range j.Accounts {
			for _, st := range a.Streams {
				if st.Name == "REMAPHORE" {
					last, found = max(last, st.State.LastSeq), true
				}
			}
		}
	}
	return last, found
}

func (h *harness) healthy(server string) bool {
	b, err := h.http(server, "/healthz")
	var hz struct {
		Status string `json:"status"`
	}
	return err == nil && json.Unmarshal(b, &hz) == nil && hz.Status == "ok"
}

// connected reports whether a client named name is connected to server.
func (h *harness) connected(server, name string) (bool, error) {
	b, err := h.http(server, "/connz?limit=1000")
	if err != nil {
		return false, err
	}
	var c struct {
		Conns []struct {
			Name string `json:"name"`
		} `json:"connections"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return false, fmt.Errorf("%s /connz: %w", server, err)
	}
	return slices.ContainsFunc(c.Conns, func(c struct {
		Name string `json:"name"`
	}) bool {
		return c.Name == name
	}), nil
}

// ---- the auditor ------------------------------------------------------------

// audit runs remaphore-audit ARGS in the auditor's container.
func (h *harness) audit(args ...string) (stdout, stderr string, err error) {
	cmd := exec.Command("docker", append([]string{"exec", h.cid["auditor"], "/usr/local/bin/remaphore-audit"},
		append(args, "-c", "/etc/remaphore/remaphore.conf")...)...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	if err != nil {
		err = fmt.Errorf("remaphore-audit %s: %w: %s", strings.Join(args, " "), err, head(strings.TrimSpace(e.String()), 300))
	}
	return o.String(), e.String(), err
}

// auditCaughtUp waits until the auditor has stored the stream's last
// sequence.
func (h *harness) auditCaughtUp(t *testing.T, d time.Duration) {
	t.Helper()
	var last, stored uint64
	var lastOK bool
	var why string
	if !poll(d, 500*time.Millisecond, func() bool {
		last, lastOK = h.streamLast()
		o, _, err := h.audit("stats", "-json")
		if err != nil {
			why = err.Error()
			return false
		}
		var st struct {
			LastSeq uint64 `json:"last_seq"`
		}
		if err := json.Unmarshal([]byte(o), &st); err != nil {
			why = "stats -json: " + err.Error()
			return false
		}
		stored = st.LastSeq
		return lastOK && stored == last
	}) {
		t.Fatalf("the auditor did not catch up in %s: it stored up to seq %d, the stream holds %d (%s)", d, stored, last, why)
	}
}

// record is the part of a `remaphore-audit query -json` line the harness
// reads.
type record struct {
	Record  string `json:"record"` // "gap" for a gap record
	Seq     uint64 `json:"seq"`
	Verdict string `json:"verdict"`
	Reason  string `json:"reason"`
	Sender  string `json:"sender"`
	UUID    string `json:"uuid"`
}

// query runs `remaphore-audit query -json ARGS`, keeps its output in
// gen/out/NAME.json, and returns its records.
func (h *harness) query(t *testing.T, name string, args ...string) []record {
	t.Helper()
	o, _, err := h.audit(append([]string{"query", "-json"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(h.out, name+".json"), []byte(o), 0o600)
	var recs []record
	sc := bufio.NewScanner(strings.NewReader(o))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("query %s: line %q: %v", strings.Join(args, " "), head(sc.Text(), 200), err)
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return recs
}

// count is how many records match.
func count(recs []record, match func(record) bool) int {
	n := 0
	for _, r := range recs {
		if match(r) {
			n++
		}
	}
	return n
}

func (h *harness) verify(t *testing.T, name string) string {
	t.Helper()
	o, e, err := h.audit("verify")
	_ = os.WriteFile(filepath.Join(h.out, name+".out"), []byte(o+e), 0o600)
	last := lastLine(o+e, "\x00")
	if err != nil {
		t.Fatalf("verify: %s (%v)", last, err)
	}
	return last
}
