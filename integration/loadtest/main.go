// Command loadtest simulates many waiting remaphore receivers in one
// process, each with its own NATS connection and consumer, through the same
// code the remaphore command runs (node.StartReceiver and Next). It sends
// one message with the real `remaphore -s`, and prints how long it took
// until all receivers were ready, how long from the send until the last one
// accepted the message, errors by kind, and the server's memory per waiting
// receiver (from its monitoring endpoint). The same run measures N plain
// core NATS subscriptions as the floor. scripts/scale.sh runs it.
//
// Topologies: -server takes a comma-separated list (a cluster: receiver i
// lists the servers starting at the i-th, so the receivers spread over
// them; the sender lists them all); with -leafs the receivers connect to
// the leaf nodes instead, each reading a mirror of the hub's stream that
// the tool creates in the leaf's own JetStream domain, and the run also
// prints when the message reached the last leaf's mirror.
//
// It reports as it goes: every -progress the receivers ready so far and the
// failures by kind (refused connections, descriptor exhaustion, JetStream
// API errors, timeouts), retried ones included; the first failure of each
// kind at once; and a final line however the run ends (its -timeout, a
// descriptor limit reached, a fatal error). With -idle it holds all
// receivers waiting that long and prints the CPU the servers (-server-pids)
// used meanwhile: the idle cost of waiting receivers.
//
// With -mode request the N receivers are responders, each a node of its
// own (destination and key), and one node.Request (what remaphore -r
// runs) asks them all: it prints how long from the request until the last
// answer arrived, and how many answered.
//
// With -receipts (receive mode) each of the N receivers is a node of its
// own with receipts: true, and an auditor runs in this process (the code
// remaphore-audit run runs, with all N as peers): it prints how long from
// the send until the auditor had recorded the last receipt, and how many
// receipts its store holds. See receipts.go.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/remaphore/remaphore/config"
	"github.com/remaphore/remaphore/node"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/script"
	"github.com/remaphore/remaphore/sign"
	"github.com/remaphore/remaphore/transport"
)

func main() {
	var (
		server   = flag.String("server", "nats://127.0.0.1:4222", "NATS server `urls`, comma-separated: the servers of one cluster (the sender's; receivers spread over them)")
		leafs    = flag.String("leafs", "", "leaf node `urls`, comma-separated: receivers spread over them, each reading its leaf's mirror of the stream")
		hubDom   = flag.String("hub-domain", "hub", "JetStream `domain` of the -server cluster, which the leafs' mirrors copy from")
		replicas = flag.Int("replicas", 1, "stream replicas (3 on a cluster)")
		hb       = flag.Duration("heartbeat", 0, "receivers' idle heartbeat (the config key heartbeat; 0: its default)")
		creds    = flag.String("creds", "", "NATS credentials `file` (nkey seed or .creds)")
		monitor  = flag.String("monitor", "", "server monitoring `urls` (http://127.0.0.1:8222), comma-separated, for their memory")
		pids     = flag.String("server-pids", "", "server process `ids`, comma-separated (Linux): their CPU with -idle, their descriptors in progress lines")
		idle     = flag.Duration("idle", 0, "hold all receivers waiting this long before the send and print the servers' CPU meanwhile")
		every    = flag.Duration("progress", 3*time.Second, "print progress this often")
		pprof    = flag.String("pprof", "", "with -idle: the first server's profiling `url` (its prof_port); its CPU profile over the idle time is written to -pprof-out")
		pprofOut = flag.String("pprof-out", "server-idle.pprof", "`file` for -pprof's profile")
		n        = flag.Int("n", 1000, "number of simulated receivers")
		burst    = flag.Bool("burst", false, "start all receivers within one second")
		parallel = flag.Int("parallel", 200, "receivers started at once without -burst")
		bin      = flag.String("remaphore", "remaphore", "the remaphore `binary` that sends")
		timeout  = flag.Duration("timeout", 2*time.Minute, "bound for the whole run")
		core     = flag.Bool("core", true, "also measure N core subscriptions as the floor")
		mode     = flag.String("mode", "receive", "receive: N receivers accept one message sent with remaphore -s; request: N responders answer one node.Request")
		receipts = flag.Bool("receipts", false, "receive mode: N receivers with receipts: true, each a node of its own, and an in-process auditor that records their receipts")
	)
	flag.Parse()
	if *creds == "" {
		fatal("-creds is required")
	}
	if *mode != "receive" && *mode != "request" {
		fatal(fmt.Sprintf("-mode %q: use receive or request", *mode))
	}
	servers, leafURLs := split(*server), split(*leafs)
	serverPids = nil
	for _, p := range split(*pids) {
		id, err := strconv.Atoi(p)
		if err != nil {
			fatal(fmt.Sprintf("-server-pids: %q is not a process id", p))
		}
		serverPids = append(serverPids, id)
	}
	progressEvery = *every
	base, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	// The run also ends early, with its cause, when a descriptor limit is
	// reached: more retries cannot help.
	ctx, stop := context.WithCancelCause(base)
	defer stop(nil)
	abort = stop
	runTimeout = *timeout

	dir, err := os.MkdirTemp("", "remaphore-loadtest")
	check(err)
	defer os.RemoveAll(dir)
	sender, _ := sign.GenerateKey(nil)
	rkey, _ := sign.GenerateKey(nil)
	opts := fmt.Sprintf("credentials: %s\nallow_skew: 10s\nmax_consumers: %d\nreplicas: %d\n", *creds, max(100000, 2**n), *replicas)
	if *hb > 0 {
		opts += fmt.Sprintf("heartbeat: %s\n", *hb)
	}
	common := serverLines(servers, 0) + opts
	sendConf := filepath.Join(dir, "sender.conf")
	check(os.WriteFile(sendConf, []byte(common+fmt.Sprintf("destination: com.load.sender\n[ Identities ]\n%s %s [*]\n[ Peers ]\n", sender.Public(), sender.Base58())), 0o600))
	// One receiver config per place a receiver starts at: each server of
	// the cluster first in turn, or each leaf with its mirror.
	rbody := fmt.Sprintf("destination: com.load.receiver\n[ Identities ]\n%s %s [ping]\n[ Peers ]\ncom.load.sender %s [ping]\n", rkey.Public(), rkey.Base58(), sender.Public())
	var rcfgs []*config.Config
	subURLs := servers // where the floor's core subscriptions go
	if len(leafURLs) > 0 {
		subURLs = leafURLs
		for _, l := range leafURLs {
			cfg, err := config.Parse("receiver.conf", []byte("server: "+l+"\n"+opts+"stream: "+mirrorName+"\n"+rbody))
			check(err)
			rcfgs = append(rcfgs, cfg)
		}
	} else {
		for i := range servers {
			cfg, err := config.Parse("receiver.conf", []byte(serverLines(servers, i)+opts+rbody))
			check(err)
			rcfgs = append(rcfgs, cfg)
		}
	}

	// Create the stream first, so that the receivers measure waiting, not
	// stream creation; and read the server's memory before.
	run(ctx, *bin, "-c", sendConf, "-s", "-u", "warmup")
	var mirrors []*mirror
	if len(leafURLs) > 0 {
		mirrors = makeMirrors(ctx, leafURLs, *creds, *hubDom, max(100000, 2**n))
		defer func() {
			for _, m := range mirrors {
				m.nc.Close()
			}
		}()
	}
	memBefore := serverMem(*monitor)

	if *mode == "request" {
		fmt.Printf("remaphore responders: n=%d burst=%v\n", *n, *burst)
		res := runRequest(ctx, common, sender, *n, *burst, *parallel)
		res.print()
		res.final(ctx)
		if res.errors > 0 || res.accepted != *n {
			failed(ctx)
		}
		return
	}
	if *receipts {
		fmt.Printf("remaphore receivers with receipts: n=%d burst=%v\n", *n, *burst)
		if !runReceipts(ctx, dir, common, sender, *n, *burst, *parallel, func() { run(ctx, *bin, "-c", sendConf, "-s", "-u", "loadtest") }) {
			os.Exit(1)
		}
		return
	}
	fmt.Printf("remaphore receivers: n=%d burst=%v servers=%d leafs=%d\n", *n, *burst, len(servers), len(leafURLs))
	var reached func() time.Duration
	res := runReceivers(ctx, func(i int) *config.Config { return rcfgs[i%len(rcfgs)] }, *n, *burst, *parallel, false, func() time.Time {
		reached = watchMirrors(ctx, mirrors)
		t := time.Now()
		run(ctx, *bin, "-c", sendConf, "-s", "-u", "loadtest")
		return t
	}, func(ready int) { // while all wait
		if m := serverMem(*monitor); m > 0 && memBefore > 0 && ready > 0 {
			fmt.Printf("  server memory: %.1f MiB before, %.1f MiB with %d waiting: %.1f KiB per receiver\n",
				mib(memBefore), mib(m), ready, float64(m-memBefore)/1024/float64(ready))
		}
		if *idle > 0 && ctx.Err() == nil {
			measureIdle(ctx, *idle, ready, *pprof, *pprofOut)
		}
	})
	res.print()
	if reached != nil {
		if d := reached(); d > 0 {
			fmt.Printf("  the message reached the last leaf's mirror %v after the send\n", d.Round(time.Millisecond))
		} else {
			fmt.Printf("  the message did not reach every leaf's mirror\n")
			res.errors++
		}
	}
	res.final(ctx)
	if *core && ctx.Err() == nil {
		fmt.Printf("core NATS subscriptions (the floor): n=%d burst=%v\n", *n, *burst)
		floor := runCore(ctx, subURLs, servers[0], *creds, *n, *burst, *parallel)
		floor.print()
		floor.final(ctx)
		if floor.lastAccept > 0 && floor.allReady > 0 {
			fmt.Printf("ratio remaphore/core: ready %.1fx, delivery %.1fx\n",
				float64(res.allReady)/float64(floor.allReady), float64(res.lastAccept)/float64(floor.lastAccept))
		}
	}
	if res.errors > 0 || res.accepted != *n {
		failed(ctx)
	}
}

// failed ends a run that did not reach every receiver, saying why when
// something ended it early.
func failed(ctx context.Context) {
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", endedBy(ctx))
	}
	os.Exit(1)
}

type result struct {
	n, accepted, errors int
	allReady            time.Duration // from the first start until the last ready
	lastAccept          time.Duration // from the send until the last accept
	errKinds            map[string]int
	t                   *tracker
}

func (r result) print() {
	fmt.Printf("  ready: %d/%d in %v\n", r.n-r.errors, r.n, r.allReady.Round(time.Millisecond))
	fmt.Printf("  accepted: %d/%d, last %v after the send\n", r.accepted, r.n, r.lastAccept.Round(time.Millisecond))
	kinds := make([]string, 0, len(r.errKinds))
	for k := range r.errKinds {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Printf("  errors: %d %s\n", r.errKinds[k], k)
	}
}

// final prints the phase's last line: what it reached and what ended it.
func (r result) final(ctx context.Context) {
	if r.t != nil {
		r.t.finish(ctx)
	}
}

// Set by main: where progress lines come from and how the run ends early.
var (
	progressEvery time.Duration
	serverPids    []int
	abort         context.CancelCauseFunc = func(error) {}
	runTimeout    time.Duration
	current       atomic.Pointer[tracker] // the phase running, for fatal's final line
)

// tracker counts one phase's progress for the periodic lines and the
// final one.
type tracker struct {
	name            string
	n               int
	start           time.Time
	ready, accepted atomic.Int64
	stop            chan struct{}
	once            sync.Once

	mu      sync.Mutex
	failed  map[string]int // receivers that gave up, by kind
	retried map[string]int // failures the client logged and tried again, by kind
}

func track(name string, n int) *tracker {
	t := &tracker{name: name, n: n, start: time.Now(), stop: make(chan struct{}), failed: map[string]int{}, retried: map[string]int{}}
	current.Store(t)
	if progressEvery > 0 {
		go func() {
			tk := time.NewTicker(progressEvery)
			defer tk.Stop()
			for {
				select {
				case <-t.stop:
					return
				case <-tk.C:
					fmt.Printf("  [%s %.0fs] %s\n", t.name, time.Since(t.start).Seconds(), t.line())
					checkServerFDs()
				}
			}
		}()
	}
	return t
}

// fail counts a receiver that gave up; the first of each kind is printed
// at once.
func (t *tracker) fail(err error) {
	k := kind(err.Error())
	t.mu.Lock()
	t.failed[k]++
	first := t.failed[k] == 1
	t.mu.Unlock()
	if first {
		fmt.Printf("  [%s %.0fs] first failure: %s: %v\n", t.name, time.Since(t.start).Seconds(), k, err)
	}
	emfile(k, err.Error())
}

// retry counts a failure the client retries (from its warnings).
func (t *tracker) retry(k, msg string) {
	t.mu.Lock()
	t.retried[k]++
	first := t.retried[k] == 1
	t.mu.Unlock()
	if first {
		fmt.Printf("  [%s %.0fs] first retried failure: %s: %s\n", t.name, time.Since(t.start).Seconds(), k, msg)
	}
	emfile(k, msg)
}

// emfile ends the run when this process is out of descriptors: no retry
// can help, and the counts reached are the answer.
func emfile(k, msg string) {
	if k != kindEMFILE {
		return
	}
	var lim syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	abort(fmt.Errorf("descriptor limit reached in the load tool (ulimit -n %d; each receiver holds one): %s; raise the limit or lower -n", lim.Cur, msg))
}

// checkServerFDs ends the run when a server has used up its descriptors:
// it then accepts no connection, and its clients only see timeouts.
func checkServerFDs() {
	for _, pid := range serverPids {
		open, limit := fds(pid)
		if limit > 0 && open >= limit-3 {
			abort(fmt.Errorf("descriptor limit reached on the server (pid %d: %d of %d open; each receiver holds one): raise its ulimit -n (LimitNOFILE=) or lower -n", pid, open, limit))
		}
	}
}

func (t *tracker) line() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := fmt.Sprintf("ready %d/%d, accepted %d", t.ready.Load(), t.n, t.accepted.Load())
	s += counts(", failed", t.failed) + counts(", retried", t.retried)
	for _, pid := range serverPids {
		if open, limit := fds(pid); limit > 0 {
			s += fmt.Sprintf(", server %d fds %d/%d", pid, open, limit)
		}
	}
	return s
}

func counts(label string, m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	kinds := make([]string, 0, len(m))
	for k := range m {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%d %s", m[k], k)
	}
	return label + ": " + strings.Join(parts, ", ")
}

// finish stops the progress lines and prints the final one.
func (t *tracker) finish(ctx context.Context) {
	t.once.Do(func() {
		close(t.stop)
		ended := "completed"
		if ctx.Err() != nil {
			ended = endedBy(ctx)
		}
		fmt.Printf("  final [%s %.1fs]: %s; %s\n", t.name, time.Since(t.start).Seconds(), t.line(), ended)
	})
}

func endedBy(ctx context.Context) string {
	c := context.Cause(ctx)
	if errors.Is(c, context.DeadlineExceeded) {
		return fmt.Sprintf("ended by its deadline (-timeout %v)", runTimeout)
	}
	return "ended: " + c.Error()
}

// retryLog counts the warnings the client logs before retrying (connect,
// consumer create) into the current phase's tracker.
type retryLog struct{}

func (retryLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (retryLog) WithAttrs([]slog.Attr) slog.Handler           { return retryLog{} }
func (retryLog) WithGroup(string) slog.Handler                { return retryLog{} }
func (retryLog) Handle(_ context.Context, r slog.Record) error {
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" {
			msg += ": " + a.Value.String()
		}
		return true
	})
	if t := current.Load(); t != nil {
		t.retry(kind(msg), msg)
	}
	return nil
}

// starter paces starts: all within one second (burst), or parallel at once.
func starter(ctx context.Context, n int, burst bool, parallel int, start func(i int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(parallel, 1))
	for i := 0; i < n && ctx.Err() == nil; i++ {
		wg.Add(1)
		if burst {
			go func() {
				defer wg.Done()
				start(i)
			}()
			time.Sleep(time.Second / time.Duration(n))
			continue
		}
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			start(i)
		}()
	}
	wg.Wait()
}

// runReceivers starts n receivers (receiver i with cfgOf(i)), calls
// waiting once all are ready (with how many are), then send, and waits
// for each to accept one message; with respond each answers it (node's
// Receiver.Handle, no script).
func runReceivers(ctx context.Context, cfgOf func(i int) *config.Config, n int, burst bool, parallel int, respond bool, send func() time.Time, waiting func(ready int)) result {
	log := slog.New(retryLog{})
	res := result{n: n, errKinds: map[string]int{}, t: track("receivers", n)}
	var mu sync.Mutex
	rcvs := make([]*node.Receiver, n)
	t0 := time.Now()
	var lastReady atomic.Int64
	starter(ctx, n, burst, parallel, func(i int) {
		r, err := node.StartReceiver(ctx, node.ReceiverOptions{Config: cfgOf(i), Channel: "all", Logger: log, Filters: uuidFilter("loadtest")})
		if err != nil {
			res.t.fail(err)
			mu.Lock()
			res.errors++
			res.errKinds[kind(err.Error())]++
			mu.Unlock()
			return
		}
		rcvs[i] = r
		res.t.ready.Add(1)
		for {
			old := lastReady.Load()
			d := int64(time.Since(t0))
			if d <= old || lastReady.CompareAndSwap(old, d) {
				break
			}
		}
	})
	defer func() {
		if ctx.Err() != nil {
			// The run ended early (deadline, descriptor limit): exit
			// now, not after closing each receiver against a server
			// that may not answer; the server drops their consumers.
			return
		}
		starter(context.Background(), n, false, 500, func(i int) {
			if rcvs[i] != nil {
				rcvs[i].Close()
			}
		})
	}()
	res.allReady = time.Duration(lastReady.Load())
	// Receivers the run never started (it ended first) count as errors.
	res.errors = n - int(res.t.ready.Load())
	if ctx.Err() != nil {
		return res
	}
	waiting(int(res.t.ready.Load()))
	if ctx.Err() != nil {
		return res
	}
	var wg sync.WaitGroup
	accepts := make(chan time.Time, n)
	for _, r := range rcvs {
		if r == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, _, err := r.Next(ctx)
			if err != nil {
				return
			}
			accepted := time.Now()
			accepts <- accepted
			res.t.accepted.Add(1)
			if respond {
				if _, err := r.Handle(ctx, script.Command{}, v); err != nil {
					fmt.Fprintln(os.Stderr, "loadtest: reply:", err)
				}
			}
			// A no-op unless the config has receipts: true (-receipts).
			r.Receipt(ctx, v, accepted, false, 0)
		}()
	}
	sent := send()
	wg.Wait()
	close(accepts)
	for t := range accepts {
		res.accepted++
		res.lastAccept = max(res.lastAccept, t.Sub(sent))
	}
	return res
}

// runRequest starts n responders, each a node of its own that trusts the
// sender, and has the sender (trusting all of them) ask them one request
// through node.Request. The result's accepted and lastAccept are the
// answers the requester collected and when the last one arrived.
func runRequest(ctx context.Context, common string, sender sign.PrivateKey, n int, burst bool, parallel int) result {
	cfgs := make([]*config.Config, n)
	var peers strings.Builder
	for i := range cfgs {
		k, _ := sign.GenerateKey(nil)
		dest := fmt.Sprintf("com.load.r%05d", i)
		fmt.Fprintf(&peers, "%s %s [ping]\n", dest, k.Public())
		var err error
		cfgs[i], err = config.Parse(dest+".conf", []byte(common+fmt.Sprintf("destination: %s\n[ Identities ]\n%s %s [ping]\n[ Peers ]\ncom.load.sender %s [ping]\n",
			dest, k.Public(), k.Base58(), sender.Public())))
		check(err)
	}
	reqCfg, err := config.Parse("requester.conf", []byte(common+fmt.Sprintf("destination: com.load.sender\n[ Identities ]\n%s %s [*]\n[ Peers ]\n%s",
		sender.Public(), sender.Base58(), peers.String())))
	check(err)
	conn, err := node.Dial(ctx, reqCfg, false, nil)
	check(err)
	defer conn.Close()
	msg := node.Message{Channel: "all", UUID: "loadtest", Dest: "com.load.**"}
	pat, err := msg.Check()
	check(err)
	env, err := node.Seal(reqCfg, msg, true)
	check(err)
	expected, _ := node.Responders(reqCfg, pat)
	var sent time.Time
	var last time.Duration
	done := make(chan *node.Outcome, 1)
	res := runReceivers(ctx, func(i int) *config.Config { return cfgs[i] }, n, burst, parallel, true, func() time.Time {
		sent = time.Now()
		go func() {
			out, err := node.Request(ctx, conn, reqCfg, env, node.RequestOptions{Expected: expected,
				OnAnswer: func(node.Answer) error { last = time.Since(sent); return nil }})
			check(err)
			done <- out
		}()
		return sent
	}, func(int) {})
	if ctx.Err() != nil {
		return res
	}
	out := <-done
	fmt.Printf("  responders accepted the request: %d/%d, last %v after it\n", res.accepted, n, res.lastAccept.Round(time.Millisecond))
	res.accepted, res.lastAccept = len(out.Answers), last
	if len(out.Missing) > 0 {
		res.errKinds[fmt.Sprintf("no answer (first: %s)", out.Missing[0])] = len(out.Missing)
	}
	return res
}

func runCore(ctx context.Context, subURLs []string, pubURL, creds string, n int, burst bool, parallel int) result {
	res := result{n: n, errKinds: map[string]int{}, t: track("core", n)}
	opt, err := nats.NkeyOptionFromSeed(creds)
	check(err)
	conns := make([]*nats.Conn, n)
	got := make(chan time.Time, n)
	var mu sync.Mutex
	t0 := time.Now()
	var lastReady atomic.Int64
	starter(ctx, n, burst, parallel, func(i int) {
		nc, err := nats.Connect(subURLs[i%len(subURLs)], opt)
		if err == nil {
			var once sync.Once
			_, err = nc.Subscribe("loadtest.core", func(*nats.Msg) { once.Do(func() { got <- time.Now(); res.t.accepted.Add(1) }) })
			if err == nil {
				err = nc.Flush()
			}
		}
		if err != nil {
			if nc != nil {
				nc.Close()
			}
			res.t.fail(err)
			mu.Lock()
			res.errors++
			res.errKinds[kind(err.Error())]++
			mu.Unlock()
			return
		}
		conns[i] = nc
		res.t.ready.Add(1)
		d := int64(time.Since(t0))
		for old := lastReady.Load(); d > old && !lastReady.CompareAndSwap(old, d); old = lastReady.Load() {
		}
	})
	defer func() {
		for _, nc := range conns {
			if nc != nil {
				nc.Close()
			}
		}
	}()
	res.allReady = time.Duration(lastReady.Load())
	if ctx.Err() != nil {
		return res
	}
	pub, err := nats.Connect(pubURL, opt)
	check(err)
	defer pub.Close()
	// Subscriptions on other servers (leafs, cluster peers) are known to
	// the publisher's server once their interest has propagated: a short
	// wait, so the floor measures delivery, not propagation.
	time.Sleep(time.Second)
	sent := time.Now()
	check(pub.Publish("loadtest.core", []byte("go")))
	check(pub.Flush())
	want := n - res.errors
	for res.accepted < want {
		select {
		case t := <-got:
			res.accepted++
			res.lastAccept = max(res.lastAccept, t.Sub(sent))
		case <-ctx.Done():
			want = 0
		}
	}
	return res
}

func uuidFilter(u string) (r policy.Rules) { r.UUID = u; return r }

const kindEMFILE = "descriptor exhaustion (EMFILE)"

// kind names the class of a failure, for the counts by kind.
func kind(s string) string {
	for _, k := range []struct{ sub, kind string }{
		{"too many open files", kindEMFILE},
		{"descriptor limit reached", "stopped: descriptor limit reached"}, // failed because abort ended the run
		{"connection refused", "refused connection"},
		{"no servers available", "refused connection"}, // nats.ErrNoServers: no server took the connection
		{"maximum consumers", "JetStream API: maximum consumers"},
		{"API queue", "JetStream API: queue full"},
		{"no responders", "JetStream API: no responders"},
		{"context deadline", "deadline"},
		{"context canceled", "canceled"},
		{"timeout", "timeout"},
		{"EOF", "connection closed"},
		{"connection reset", "connection closed"},
		{"disconnected", "disconnected"},
		{"JetStream", "JetStream API: other"},
	} {
		if strings.Contains(s, k.sub) {
			return k.kind
		}
	}
	if len(s) > 60 {
		s = s[:60] + "..."
	}
	return s
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// serverLines lists the servers starting at the i-th: the first is the
// one a receiver connects to, the others its failover order.
func serverLines(servers []string, i int) string {
	var b strings.Builder
	for j := range servers {
		fmt.Fprintf(&b, "server: %s\n", servers[(i+j)%len(servers)])
	}
	return b.String()
}

// mirrorName is the stream each leaf holds: a mirror of the hub's.
const mirrorName = "REMAPHORE_LEAF"

type mirror struct {
	url string
	nc  *nats.Conn
	st  jetstream.Stream
}

// makeMirrors creates on each leaf, in the leaf's own JetStream domain, a
// mirror of the hub's stream (in domain hubDomain), and waits until it
// holds what the hub holds.
func makeMirrors(ctx context.Context, urls []string, creds, hubDomain string, maxConsumers int) []*mirror {
	opt, err := nats.NkeyOptionFromSeed(creds)
	check(err)
	var out []*mirror
	for _, u := range urls {
		nc, err := nats.Connect(u, opt)
		check(err)
		js, err := jetstream.New(nc)
		check(err)
		st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: mirrorName, MaxConsumers: maxConsumers,
			Mirror: &jetstream.StreamSource{Name: transport.StreamName(config.DefaultSubject), Domain: hubDomain}})
		if err != nil {
			fatal(fmt.Sprintf("leaf %s: create the mirror %s of the hub's stream: %v", u, mirrorName, err))
		}
		m := &mirror{url: u, nc: nc, st: st}
		deadline := time.Now().Add(30 * time.Second)
		for m.lastSeq(ctx) == 0 {
			if time.Now().After(deadline) {
				fatal(fmt.Sprintf("leaf %s: its mirror %s holds nothing of the hub's stream after 30s: is the leaf connected to the hub, and is the hub's JetStream domain %q?", u, mirrorName, hubDomain))
			}
			time.Sleep(100 * time.Millisecond)
		}
		out = append(out, m)
	}
	return out
}

func (m *mirror) lastSeq(ctx context.Context) uint64 {
	info, err := m.st.Info(ctx)
	if err != nil {
		return 0
	}
	return info.State.LastSeq
}

// watchMirrors notes when each mirror grows past what it holds now; the
// function it returns waits (at most 30s) and gives the time from sent
// until the last mirror held the new message, 0 if one never did.
func watchMirrors(ctx context.Context, ms []*mirror) func() time.Duration {
	if len(ms) == 0 {
		return nil
	}
	at := make([]time.Time, len(ms))
	var wg sync.WaitGroup
	start := time.Now()
	for i, m := range ms {
		base := m.lastSeq(ctx)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(start) < 30*time.Second && ctx.Err() == nil {
				if m.lastSeq(ctx) > base {
					at[i] = time.Now()
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	return func() time.Duration {
		wg.Wait()
		var last time.Time
		for _, t := range at {
			if t.IsZero() {
				return 0
			}
			if t.After(last) {
				last = t
			}
		}
		return last.Sub(start)
	}
}

// measureIdle holds the receivers waiting for d and prints the CPU the
// servers and this process used meanwhile (after 5s for the start-up to
// settle); with a profiling url it saves the server's CPU profile of that
// time.
func measureIdle(ctx context.Context, d time.Duration, ready int, pprofURL, pprofOut string) {
	select {
	case <-time.After(5 * time.Second):
	case <-ctx.Done():
		return
	}
	var prof sync.WaitGroup
	if pprofURL != "" {
		prof.Add(1)
		go func() {
			defer prof.Done()
			if err := saveProfile(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", strings.TrimSuffix(pprofURL, "/"), int(d.Seconds())), pprofOut); err != nil {
				fmt.Fprintln(os.Stderr, "loadtest: server profile:", err)
			}
		}()
	}
	defer prof.Wait()
	var self0, self1 syscall.Rusage
	srv0 := serversCPU()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self0)
	t0 := time.Now()
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	el := time.Since(t0)
	srv1 := serversCPU()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self1)
	cpu := srv1 - srv0
	self := time.Duration(self1.Utime.Nano()+self1.Stime.Nano()-self0.Utime.Nano()-self0.Stime.Nano()) * time.Nanosecond
	load, _ := os.ReadFile("/proc/loadavg")
	per := "no receivers: the servers' own idle work"
	if ready > 0 {
		per = fmt.Sprintf("%.1f ms per second per 1,000 receivers", 1000*cpu.Seconds()/el.Seconds()/float64(ready)*1000)
	}
	fmt.Printf("  idle %v with %d receivers waiting: servers' CPU %.2f s (%.1f%% of one core, %s); load tool %.2f s; load average %s\n",
		el.Round(time.Second), ready, cpu.Seconds(), 100*cpu.Seconds()/el.Seconds(), per, self.Seconds(), strings.Join(strings.Fields(string(load))[:3], " "))
}

func saveProfile(url, file string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// serversCPU is the user and system time of the -server-pids (Linux
// /proc/<pid>/stat, in clock ticks of 1/100 s).
func serversCPU() time.Duration {
	var total time.Duration
	for _, pid := range serverPids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total += time.Duration(u+st) * 10 * time.Millisecond
	}
	return total
}

// fds returns how many descriptors process pid holds, and its soft limit.
func fds(pid int) (open, limit int) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return len(ents), 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Max open files") {
			if f := strings.Fields(l); len(f) >= 4 {
				limit, _ = strconv.Atoi(f[3])
			}
		}
	}
	return len(ents), limit
}

func serverMem(urls string) int64 {
	var total int64
	for _, url := range split(urls) {
		resp, err := http.Get(strings.TrimSuffix(url, "/") + "/varz")
		if err != nil {
			return 0
		}
		var v struct {
			Mem int64 `json:"mem"`
		}
		err = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if err != nil {
			return 0
		}
		total += v.Mem
	}
	return total
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func run(ctx context.Context, name string, args ...string) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			fatal(fmt.Sprintf("%s %s: %s", name, strings.Join(args, " "), endedBy(ctx)))
		}
		fatal(fmt.Sprintf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out))
	}
}

func check(err error) {
	if err != nil {
		fatal(err.Error())
	}
}

// fatal ends the run, after the current phase's final line.
func fatal(msg string) {
	if t := current.Load(); t != nil {
		t.finish(context.Background())
	}
	fmt.Fprintln(os.Stderr, "loadtest:", msg)
	os.Exit(2)
}
