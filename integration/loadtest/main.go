// Command loadtest simulates many waiting remaphore receivers in one
// process, each with its own NATS connection and consumer, through the same
// code the remaphore command runs (node.StartReceiver and Next). It sends
// one message with the real `remaphore -s`, and prints how long it took
// until all receivers were ready, how long from the send until the last one
// accepted the message, errors by kind, and the server's memory per waiting
// receiver (from its monitoring endpoint). The same run measures N plain
// core NATS subscriptions as the floor. scripts/scale.sh runs it.
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
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/remaphore/remaphore/config"
	"github.com/remaphore/remaphore/node"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/script"
	"github.com/remaphore/remaphore/sign"
)

func main() {
	var (
		server   = flag.String("server", "nats://127.0.0.1:4222", "NATS server `url`")
		creds    = flag.String("creds", "", "NATS credentials `file` (nkey seed or .creds)")
		monitor  = flag.String("monitor", "", "server monitoring `url` (http://127.0.0.1:8222) for its memory")
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
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	dir, err := os.MkdirTemp("", "remaphore-loadtest")
	check(err)
	defer os.RemoveAll(dir)
	sender, _ := sign.GenerateKey(nil)
	rkey, _ := sign.GenerateKey(nil)
	common := fmt.Sprintf("server: %s\ncredentials: %s\nallow_skew: 10s\nmax_consumers: %d\n", *server, *creds, max(100000, 2**n))
	sendConf := filepath.Join(dir, "sender.conf")
	check(os.WriteFile(sendConf, []byte(common+fmt.Sprintf("destination: com.load.sender\n[ Identities ]\n%s %s [*]\n[ Peers ]\n", sender.Public(), sender.Base58())), 0o600))
	rtext := common + fmt.Sprintf("destination: com.load.receiver\n[ Identities ]\n%s %s [ping]\n[ Peers ]\ncom.load.sender %s [ping]\n", rkey.Public(), rkey.Base58(), sender.Public())
	cfg, err := config.Parse("receiver.conf", []byte(rtext))
	check(err)

	// Create the stream first, so that the receivers measure waiting, not
	// stream creation; and read the server's memory before.
	run(ctx, *bin, "-c", sendConf, "-s", "-u", "warmup")
	memBefore := serverMem(*monitor)

	if *mode == "request" {
		fmt.Printf("remaphore responders: n=%d burst=%v\n", *n, *burst)
		res := runRequest(ctx, common, sender, *n, *burst, *parallel)
		res.print()
		if res.errors > 0 || res.accepted != *n {
			os.Exit(1)
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
	fmt.Printf("remaphore receivers: n=%d burst=%v\n", *n, *burst)
	res := runReceivers(ctx, func(int) *config.Config { return cfg }, *n, *burst, *parallel, false, func() time.Time {
		t := time.Now()
		run(ctx, *bin, "-c", sendConf, "-s", "-u", "loadtest")
		return t
	}, func() { // while all wait
		if m := serverMem(*monitor); m > 0 && memBefore > 0 {
			fmt.Printf("  server memory: %.1f MiB before, %.1f MiB with %d waiting: %.1f KiB per receiver\n",
				mib(memBefore), mib(m), *n, float64(m-memBefore)/1024/float64(*n))
		}
	})
	res.print()
	if *core {
		fmt.Printf("core NATS subscriptions (the floor): n=%d burst=%v\n", *n, *burst)
		floor := runCore(ctx, *server, *creds, *n, *burst, *parallel)
		floor.print()
		if floor.lastAccept > 0 && floor.allReady > 0 {
			fmt.Printf("ratio remaphore/core: ready %.1fx, delivery %.1fx\n",
				float64(res.allReady)/float64(floor.allReady), float64(res.lastAccept)/float64(floor.lastAccept))
		}
	}
	if res.errors > 0 || res.accepted != *n {
		os.Exit(1)
	}
}

type result struct {
	n, accepted, errors int
	allReady            time.Duration // from the first start until the last ready
	lastAccept          time.Duration // from the send until the last accept
	errKinds            map[string]int
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

// starter paces starts: all within one second (burst), or parallel at once.
func starter(n int, burst bool, parallel int, start func(i int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(parallel, 1))
	for i := 0; i < n; i++ {
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
// waiting once all are ready, then send, and waits for each to accept one
// message; with respond each answers it (node's Receiver.Handle, no
// script).
func runReceivers(ctx context.Context, cfgOf func(i int) *config.Config, n int, burst bool, parallel int, respond bool, send func() time.Time, waiting func()) result {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	res := result{n: n, errKinds: map[string]int{}}
	var mu sync.Mutex
	rcvs := make([]*node.Receiver, n)
	t0 := time.Now()
	var lastReady atomic.Int64
	starter(n, burst, parallel, func(i int) {
		r, err := node.StartReceiver(ctx, node.ReceiverOptions{Config: cfgOf(i), Channel: "all", Logger: log, Filters: uuidFilter("loadtest")})
		if err != nil {
			mu.Lock()
			res.errors++
			res.errKinds[kind(err)]++
			mu.Unlock()
			return
		}
		rcvs[i] = r
		for {
			old := lastReady.Load()
			d := int64(time.Since(t0))
			if d <= old || lastReady.CompareAndSwap(old, d) {
				break
			}
		}
	})
	res.allReady = time.Duration(lastReady.Load())
	waiting()
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
	starter(n, false, 500, func(i int) {
		if rcvs[i] != nil {
			rcvs[i].Close()
		}
	})
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
	}, func() {})
	out := <-done
	fmt.Printf("  responders accepted the request: %d/%d, last %v after it\n", res.accepted, n, res.lastAccept.Round(time.Millisecond))
	res.accepted, res.lastAccept = len(out.Answers), last
	if len(out.Missing) > 0 {
		res.errKinds[fmt.Sprintf("no answer (first: %s)", out.Missing[0])] = len(out.Missing)
	}
	return res
}

func runCore(ctx context.Context, url, creds string, n int, burst bool, parallel int) result {
	res := result{n: n, errKinds: map[string]int{}}
	opt, err := nats.NkeyOptionFromSeed(creds)
	check(err)
	conns := make([]*nats.Conn, n)
	got := make(chan time.Time, n)
	var mu sync.Mutex
	t0 := time.Now()
	var lastReady atomic.Int64
	starter(n, burst, parallel, func(i int) {
		nc, err := nats.Connect(url, opt)
		if err == nil {
			var once sync.Once
			_, err = nc.Subscribe("loadtest.core", func(*nats.Msg) { once.Do(func() { got <- time.Now() }) })
			if err == nil {
				err = nc.Flush()
			}
		}
		if err != nil {
			mu.Lock()
			res.errors++
			res.errKinds[kind(err)]++
			mu.Unlock()
			return
		}
		conns[i] = nc
		d := int64(time.Since(t0))
		for old := lastReady.Load(); d > old && !lastReady.CompareAndSwap(old, d); old = lastReady.Load() {
		}
	})
	res.allReady = time.Duration(lastReady.Load())
	pub, err := nats.Connect(url, opt)
	check(err)
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
	pub.Close()
	for _, nc := range conns {
		if nc != nil {
			nc.Close()
		}
	}
	return res
}

func uuidFilter(u string) (r policy.Rules) { r.UUID = u; return r }

func kind(err error) string {
	s := err.Error()
	for _, k := range []string{"maximum consumers", "API queue", "timeout", "deadline", "connect", "no responders"} {
		if strings.Contains(s, k) {
			return k
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "deadline"
	}
	return s
}

func serverMem(url string) int64 {
	if url == "" {
		return 0
	}
	resp, err := http.Get(strings.TrimSuffix(url, "/") + "/varz")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var v struct {
		Mem int64 `json:"mem"`
	}
	if json.NewDecoder(resp.Body).Decode(&v) != nil {
		return 0
	}
	return v.Mem
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func run(ctx context.Context, name string, args ...string) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		fatal(fmt.Sprintf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out))
	}
}

func check(err error) {
	if err != nil {
		fatal(err.Error())
	}
}

func fatal(msg string) {
	fmt.Fprintln(os.Stderr, "loadtest:", msg)
	os.Exit(2)
}
