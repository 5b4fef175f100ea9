// Command tracestat reads a Go execution trace (go test -trace) and sums,
// for each kind of goroutine, the time its goroutines spent running, in
// system calls, waiting for a CPU, and blocked. A pipeline stage that one
// goroutine runs (the auditor's writer, its fetch loop, a NATS client's
// read loop) cannot go faster than its running plus system-call time per
// message, whatever the number of cores: that is the figure BENCHMARKS.md
// compares.
//
// It is a module of its own so that the project does not depend on
// golang.org/x/exp for a measuring tool:
//
//	go test ./audit/ingest -run '^$' -bench 'IngestBacklog/auditor$' -benchtime 1x -trace /tmp/t.out
//	cd scripts/tracestat && go run . -n 100000 /tmp/t.out
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"slices"
	"strings"

	"golang.org/x/exp/trace"
)

type sums struct{ run, sys, wait, block, n int64 }

func main() {
	msgs := flag.Int("n", 0, "messages the traced run handled: also print µs per message")
	top := flag.Int("top", 25, "kinds of goroutine to print")
	flag.Parse()
	if flag.NArg() != 1 {
		log.Fatal("usage: tracestat [-n messages] [-top N] trace.out")
	}
	f, err := os.Open(flag.Arg(0))
	if err != nil {
		log.Fatal(err)
	}
	r, err := trace.NewReader(f)
	if err != nil {
		log.Fatal(err)
	}
	// Times are kept per goroutine and summed by name at the end: a
	// goroutine is named by its own stack, which its first transitions
	// may not show yet.
	type goroutine struct {
		since trace.Time
		name  string
		sums
	}
	gs := map[trace.GoID]*goroutine{}
	var first, last trace.Time
	for {
		ev, err := r.ReadEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		if first == 0 {
			first = ev.Time()
		}
		last = ev.Time()
		if ev.Kind() != trace.EventStateTransition {
			continue
		}
		st := ev.StateTransition()
		if st.Resource.Kind != trace.ResourceGoroutine {
			continue
		}
		id := st.Resource.Goroutine()
		from, _ := st.Goroutine()
		g := gs[id]
		if g == nil {
			g = &goroutine{since: ev.Time()}
			gs[id] = g
		}
		if g.name == "" {
			g.name = name(st.Stack)
		}
		s := &g.sums
		d := int64(ev.Time() - g.since)
		switch from {
		case trace.GoRunning:
			s.run += d
		case trace.GoSyscall:
			s.sys += d
		case trace.GoRunnable:
			s.wait += d
		case trace.GoWaiting:
			s.block += d
		case trace.GoNotExist, trace.GoUndetermined:
			s.n++
		}
		g.since = ev.Time()
	}
	by := map[string]*sums{}
	for _, g := range gs {
		k := g.name
		if k == "" {
			k = "(unknown)"
		}
		s := by[k]
		if s == nil {
			s = &sums{}
			by[k] = s
		}
		s.run, s.sys, s.wait, s.block, s.n = s.run+g.run, s.sys+g.sys, s.wait+g.wait, s.block+g.block, s.n+g.n
	}
	names := make([]string, 0, len(by))
	for k := range by {
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int {
		return int((by[b].run + by[b].sys) - (by[a].run + by[a].sys))
	})
	fmt.Printf("trace of %.3f s", float64(last-first)/1e9)
	if *msgs > 0 {
		fmt.Printf(", %d messages; busy µs/msg = (running + syscall) per message", *msgs)
	}
	fmt.Println()
	fmt.Printf("%10s %10s %10s %10s %6s", "run ms", "syscall ms", "runnable ms", "blocked ms", "count")
	if *msgs > 0 {
		fmt.Printf(" %12s", "busy µs/msg")
	}
	fmt.Println("  goroutine (its first function outside runtime and sync)")
	for i, k := range names {
		if i == *top {
			break
		}
		s := by[k]
		fmt.Printf("%10.1f %10.1f %10.1f %10.1f %6d", ms(s.run), ms(s.sys), ms(s.wait), ms(s.block), s.n)
		if *msgs > 0 {
			fmt.Printf(" %12.2f", float64(s.run+s.sys)/1e3/float64(*msgs))
		}
		fmt.Println("  " + k)
	}
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

// name is a goroutine's first function outside the runtime and sync (the
// function a `go` statement or a sync.WaitGroup.Go started), from its
// outermost frame in.
func name(stk trace.Stack) string {
	if stk == trace.NoStack {
		return ""
	}
	var frames []string
	for fr := range stk.Frames() {
		frames = append(frames, fr.Func)
	}
	for i := len(frames) - 1; i >= 0; i-- {
		if f := frames[i]; !strings.HasPrefix(f, "runtime.") && !strings.HasPrefix(f, "sync.") && !strings.HasPrefix(f, "internal/") {
			return f
		}
	}
	return ""
}
