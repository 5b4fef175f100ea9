package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/remaphore/remaphore/audit"
	"github.com/remaphore/remaphore/sign"
)

// Attacks on the audit trail (issue 13), run against the real binary: a
// NATS user that may publish on the stream but holds no peer key floods
// it while the auditor is down, and messages are removed from the stream
// before the auditor reads them.

// vmHWM is the process's peak resident set (VmHWM), in bytes.
func vmHWM(t *testing.T, pid int) uint64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

func (e *env) publish(t *testing.T, body []byte, id string) uint64 {
	t.Helper()
	seq, err := e.conn.Publish(context.Background(), e.spec, "remaphore.msg.all", body, id)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	return seq
}

func (e *env) send(t *testing.T, key sign.PrivateKey, payload []byte) (*sign.Envelope, uint64) {
	t.Helper()
	env, err := sign.Seal(&sign.Message{Kind: sign.KindMsg, Root: "remaphore", Channel: "all", Dest: "**",
		Verb: "ping", Sent: time.Now(), Payload: payload}, key)
	if err != nil {
		t.Fatal(err)
	}
	return env, e.publish(t, env.Body(), env.ID)
}

// TestHostile_FloodOfLargeJunkWhileTheAuditorIsDown: 400 messages of 1 MB
// from a key that is not a peer (half signed envelopes, half garbage), with
// 10 signed peer messages between them, stored while the auditor was down
// and read as a backlog by a freshly started one. Every peer message is
// stored once, every stream sequence is accounted for (a record, a refused
// record, or a gap), verify passes, the file stays under 50 MB and the
// auditor's peak RSS under 200 MiB. Before issue 13 the unbounded fetch
// got the auditor cut off as a slow consumer, a second gap was taken as
// real without asking the stream, 3 of 10 peer messages were missing, the
// file grew to 300-430 MB and the RSS to 0.7-0.9 GB.
func TestHostile_FloodOfLargeJunkWhileTheAuditorIsDown(t *testing.T) {
	if testing.Short() {
		t.Skip("400 MB backlog")
	}
	e := newEnv(t)
	mallory, err := sign.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	const junk, bodySize = 400, 1_000_000 // the stream's limit is 1 MiB of body
	peerIDs := map[string]uint64{}
	signedJunk := make([]byte, bodySize-4096)
	garbage := make([]byte, bodySize)
	for i := range junk {
		if i%40 == 20 {
			env, seq := e.send(t, e.alice, []byte(fmt.Sprintf("peer message %d", i/40)))
			peerIDs[env.ID] = seq
		}
		if i%2 == 0 {
			rand.Read(signedJunk[:64])
			e.send(t, mallory, signedJunk)
		} else {
			rand.Read(garbage)
			e.publish(t, garbage, fmt.Sprintf("junk-%d", i))
		}
	}
	st, err := e.conn.JetStream().Stream(context.Background(), "REMAPHORE")
	if err != nil {
		t.Fatal(err)
	}
	info, _ := st.Info(context.Background())
	last := info.State.LastSeq
	if len(peerIDs) != 10 || last != junk+10 || info.State.Bytes < 390_000_000 {
		t.Fatalf("backlog: %d peer messages, stream %+v", len(peerIDs), info.State)
	}

	begin := time.Now()
	p := start(t, "run", "-c", e.conf)
	e.waitReady(t, p)
	e.waitAckFloor(t, p, last, 3*time.Minute)
	took := time.Since(begin)
	hwm := vmHWM(t, p.Cmd.Process.Pid)
	p.Cmd.Process.Signal(syscall.SIGTERM)
	if code := p.Wait(t, 20*time.Second); code != 0 {
		t.Fatalf("auditor exit %d\n%s", code, p.Stderr.String())
	}
	if strings.Contains(p.Stderr.String(), "delivered but not received") || strings.Contains(p.Stderr.String(), "recorded as a gap") {
		t.Errorf("the auditor lost deliveries or saw gaps in a complete stream:\n%s", p.Stderr.String())
	}

	fi, err := os.Stat(e.db)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("flood of %d x 1 MB junk + 10 peer messages: ingested in %s (%.1f MB/s), database %.1f MB, peak RSS (VmHWM) %.1f MiB",
		junk, took.Round(time.Millisecond), float64(info.State.Bytes)/1e6/took.Seconds(), float64(fi.Size())/1e6, float64(hwm)/(1<<20))
	if fi.Size() >= 50_000_000 {
		t.Errorf("database %d bytes, want under 50 MB", fi.Size())
	}
	if hwm >= 200<<20 {
		t.Errorf("peak RSS %d bytes, want under 200 MiB", hwm)
	}

	s, err := audit.Open(e.db, audit.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	seen := map[uint64]string{}
	for _, rejected := range []bool{false, true} {
		err := s.Query(audit.Query{Rejected: rejected}, func(r *audit.Record) error {
			if seen[r.Seq] != "" {
				return fmt.Errorf("seq %d stored twice", r.Seq)
			}
			seen[r.Seq] = r.Reason
			if r.Accepted() {
				if peerIDs[r.HeaderID] != r.Seq {
					return fmt.Errorf("accepted seq %d is not a peer message", r.Seq)
				}
				delete(peerIDs, r.HeaderID)
			} else if r.Size() < bodySize-4096 || len(r.Body) > audit.RefusedKeep {
				return fmt.Errorf("refused seq %d: body of %d bytes, %d kept", r.Seq, r.Size(), len(r.Body))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	s.Gaps(func(g *audit.Gap) error {
		for q := g.First; q <= g.Last; q++ {
			seen[q] = "gap"
		}
		return nil
	})
	if len(peerIDs) > 0 {
		t.Errorf("%d peer messages not stored: %v", len(peerIDs), peerIDs)
	}
	for q := uint64(1); q <= last; q++ {
		if seen[q] == "" {
			t.Errorf("stream seq %d not accounted for", q)
		}
	}
	reasons := map[string]int{}
	for _, r := range seen {
		reasons[r]++
	}
	if reasons["accepted"] != 10 || reasons["unknown-sender"] != junk/2 || reasons["malformed"] != junk/2 || reasons["gap"] != 0 {
		t.Errorf("records by reason: %v", reasons)
	}
	if v := run(t, "verify", "-c", e.conf); v.Code != 0 || !strings.HasPrefix(v.Stdout.String(), fmt.Sprintf("verify: ok: 10 accepted and %d refused records checked; head seq", junk)) {
		t.Errorf("verify exit %d:\n%s%s", v.Code, v.Stdout.String(), v.Stderr.String())
	}
}

// TestHostile_PurgedBeforeReadIsAGap: messages purged from the stream
// before the auditor read them are a gap record, which verify names (exit
// 1) and -allow-gaps accepts; nothing the stream still holds is skipped.
func TestHostile_PurgedBeforeReadIsAGap(t *testing.T) {
	e := newEnv(t)
	for i := range 10 {
		e.send(t, e.alice, []byte(fmt.Sprintf("m%d", i)))
	}
	p := start(t, "run", "-c", e.conf)
	e.waitReady(t, p)
	e.waitAckFloor(t, p, 10, time.Minute)
	p.Cmd.Process.Signal(syscall.SIGTERM)
	if code := p.Wait(t, 20*time.Second); code != 0 {
		t.Fatalf("auditor exit %d\n%s", code, p.Stderr.String())
	}
	// While it is down: 10 more, and everything before seq 16 purged.
	for i := range 10 {
		e.send(t, e.alice, []byte(fmt.Sprintf("n%d", i)))
	}
	st, err := e.conn.JetStream().Stream(context.Background(), "REMAPHORE")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Purge(context.Background(), jetstream.WithPurgeSequence(16)); err != nil {
		t.Fatal(err)
	}
	p = start(t, "run", "-c", e.conf)
	e.waitReady(t, p)
	e.waitAckFloor(t, p, 20, time.Minute)
	p.Cmd.Process.Signal(syscall.SIGTERM)
	if code := p.Wait(t, 20*time.Second); code != 0 {
		t.Fatalf("auditor exit %d\n%s", code, p.Stderr.String())
	}
	if !strings.Contains(p.Stderr.String(), `msg="stream sequences gone before the auditor read them: recorded as a gap" first=11 last=15`) {
		t.Errorf("no gap logged:\n%s", p.Stderr.String())
	}

	v := run(t, "verify", "-c", e.conf)
	lines := strings.Split(v.Stdout.String(), "\n")
	wantGap := "gap seq 11-15 (5 sequence(s)) never recorded: the next message on remaphore.> is seq 16; its first sequence is 16 (5 messages held); seen "
	if v.Code != 1 || len(lines) != 3 || !strings.HasPrefix(lines[0], wantGap) ||
		!strings.HasPrefix(lines[1], "verify: FAILED: 1 gap(s) (-allow-gaps accepts them): 15 accepted and 0 refused records checked; 1 gap(s): 5 stream sequence(s) never recorded; head seq 20 hash ") {
		t.Fatalf("verify exit %d:\n%s%s", v.Code, v.Stdout.String(), v.Stderr.String())
	}
	if v := run(t, "verify", "-c", e.conf, "-allow-gaps"); v.Code != 0 || !strings.HasPrefix(v.Stdout.String(), wantGap) {
		t.Fatalf("verify -allow-gaps exit %d:\n%s%s", v.Code, v.Stdout.String(), v.Stderr.String())
	}
	q := run(t, "query", "-c", e.conf, "-gaps")
	if q.Code != 0 || !strings.HasPrefix(q.Stdout.String(), "FIRST  LAST  COUNT  SEEN                      WHAT THE STREAM SAID\n11     15    5      ") {
		t.Fatalf("query -gaps exit %d:\n%s%s", q.Code, q.Stdout.String(), q.Stderr.String())
	}
	if s := run(t, "stats", "-c", e.conf); !strings.Contains(s.Stdout.String(), "gaps     1: 5 stream sequence(s) never recorded") {
		t.Fatalf("stats:\n%s", s.Stdout.String())
	}
}
