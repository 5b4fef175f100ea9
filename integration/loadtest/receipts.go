package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/remaphore/remaphore/audit"
	"github.com/remaphore/remaphore/audit/ingest"
	"github.com/remaphore/remaphore/config"
	"github.com/remaphore/remaphore/node"
	"github.com/remaphore/remaphore/sign"
)

// runReceipts is -receipts: n receivers, each a node of its own (key and
// destination) with receipts: true, accept one message sent by send, and
// each publishes its receipt; an auditor in this process, whose peers are
// the sender and all n receivers, records everything. It prints when the
// auditor had recorded the last receipt (from the send), and how many
// receipts the store then holds for the message; it reports whether all n
// were recorded, accepted.
func runReceipts(ctx context.Context, dir, common string, sender sign.PrivateKey, n int, burst bool, parallel int, send func()) bool {
	cfgs := make([]*config.Config, n)
	var peers strings.Builder
	fmt.Fprintf(&peers, "com.load.sender %s [ping]\n", sender.Public())
	for i := range cfgs {
		k, _ := sign.GenerateKey(nil)
		dest := fmt.Sprintf("com.load.r%05d", i)
		fmt.Fprintf(&peers, "%s %s [ping]\n", dest, k.Public())
		var err error
		cfgs[i], err = config.Parse(dest+".conf", []byte(common+fmt.Sprintf("destination: %s\nreceipts: true\n[ Identities ]\n%s %s [ping]\n[ Peers ]\ncom.load.sender %s [ping]\n",
			dest, k.Public(), k.Base58(), sender.Public())))
		check(err)
	}
	audCfg, err := config.Parse("audit.conf", []byte(common+"destination: com.load.audit\n[ Peers ]\n"+peers.String()))
	check(err)

	// The auditor: remaphore-audit run's code, in this process. It counts
	// the records it commits; the receivers' n receipts come after the
	// warm-up message and the message itself.
	conn, err := node.Dial(ctx, audCfg, false, nil)
	check(err)
	defer conn.Close()
	db := filepath.Join(dir, "audit.db")
	var recorded atomic.Int64
	var sentAt atomic.Int64
	var lastAt atomic.Int64 // when the records reached all of them
	want := int64(n + 2)
	ready := make(chan struct{})
	actx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := ingest.Run(actx, ingest.RunOptions{Conn: conn, Stream: node.StreamSpec(audCfg), Peers: audCfg.Peers,
			AllowSkew: audCfg.AllowSkew, DB: db,
			Ready: func(uint64) { close(ready) },
			OnCommit: func(c ingest.CommitInfo) {
				if recorded.Add(int64(c.Accepted+c.Rejected)) >= want && lastAt.Load() == 0 {
					lastAt.Store(time.Now().UnixNano())
				}
			}})
		if err != nil && actx.Err() == nil {
			fatal("auditor: " + err.Error())
		}
	}()
	select {
	case <-ready:
	case <-ctx.Done():
		fatal("auditor not ready")
	}

	res := runReceivers(ctx, func(i int) *config.Config { return cfgs[i] }, n, burst, parallel, false, func() time.Time {
		t := time.Now()
		sentAt.Store(t.UnixNano())
		send()
		return t
	}, func(int) {})
	res.print()
	for lastAt.Load() == 0 && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	wg.Wait()
	if lastAt.Load() == 0 {
		fmt.Printf("  auditor: %d/%d records when the run's -timeout ended\n", recorded.Load(), want)
	} else {
		fmt.Printf("  auditor: last receipt recorded %v after the send\n", time.Duration(lastAt.Load()-sentAt.Load()).Round(time.Millisecond))
	}
	s, err := audit.Open(db, audit.Options{ReadOnly: true})
	check(err)
	defer s.Close()
	qt := time.Now()
	rs, err := s.Receipts(audit.Query{UUID: "loadtest"})
	check(err)
	qd := time.Since(qt)
	refused := 0
	check(s.Query(audit.Query{Rejected: true}, func(r *audit.Record) error {
		if r.IsReceipt() {
			refused++
		}
		return nil
	}))
	fmt.Printf("  auditor holds %d receipts of the message (%d refused receipts); Store.Receipts by uuid read them in %v\n", len(rs.Receipts), refused, qd.Round(time.Millisecond))
	return res.errors == 0 && res.accepted == n && len(rs.Receipts) == n
}
