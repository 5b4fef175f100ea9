package auditcli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/remaphore/remaphore/internal/proctest"

	bolt "go.etcd.io/bbolt"

	"github.com/remaphore/remaphore/audit"
	"github.com/remaphore/remaphore/internal/natstest"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
)

func testKey(t testing.TB, b byte) sign.PrivateKey {
	t.Helper()
	k, err := sign.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{b}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// result is one in-process run of the command.
type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, args ...string) result {
	t.Helper()
	return runCtx(t, context.Background(), args...)
}

func runCtx(t *testing.T, ctx context.Context, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(ctx, args, &out, &errb)
	return result{code, out.String(), errb.String()}
}

func (r result) want(t *testing.T, code int) result {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	return r
}

// jsonSeqs reads -json output and returns the seq of each line.
func (r result) jsonSeqs(t *testing.T) []uint64 {
	t.Helper()
	var out []uint64
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	for sc.Scan() {
		var j struct{ Seq uint64 }
		if err := json.Unmarshal(sc.Bytes(), &j); err != nil {
			t.Fatalf("not a JSON line: %q: %v", sc.Text(), err)
		}
		out = append(out, j.Seq)
	}
	return out
}

// fixture is a database with known records, stored at fixed offsets
// before now so that both durations and RFC 3339 times can select them.
type fixture struct {
	db    string
	now   time.Time
	alice sign.PrivateKey
	bob   sign.PrivateKey
}

// The fixture's records: seq, minutes before now, signer, verb, uuid,
// dest, refused reason ("" for accepted).
var fixtureRecords = []struct {
	seq    uint64
	ago    int
	bob    bool
	verb   string
	uuid   string
	dest   string
	reason policy.Reason
}{
	{1, 300, false, "ping", "a", "**", 0},
	{2, 240, false, "deploy", "b", "com.example.*", 0},
	{3, 180, true, "ping", "c", "com.example.host1", 0},
	{4, 120, true, "deploy", "d", "com.other.host2", policy.ReasonVerbNotAllowed},
	{5, 90, false, "status", "b", "com.example.host1", 0},
	{6, 60, true, "ping", "e", "com.other.*", 0},
	{7, 30, false, "ping", "f", "com.example.host1.**", policy.ReasonStale},
	{8, 10, false, "deploy", "g", "**", 0},
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{db: filepath.Join(t.TempDir(), "audit.db"), now: time.Now(), alice: testKey(t, 1), bob: testKey(t, 2)}
	s, err := audit.Open(f.db, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var es []audit.Entry
	for _, r := range fixtureRecords {
		at := f.now.Add(-time.Duration(r.ago) * time.Minute)
		key, dest := f.alice, "com.example.alice"
		if r.bob {
			key, dest = f.bob, "com.example.bob"
		}
		env, err := sign.Seal(&sign.Message{Kind: sign.KindMsg, Root: "remaphore", Channel: "all", Dest: r.dest,
			Verb: r.verb, UUID: r.uuid, Sent: at, Payload: []byte("payload\twith tab")}, key)
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, audit.Entry{Seq: r.seq, Stored: at, Subject: "remaphore.msg.all", HeaderID: env.ID, Body: env.Body(),
			Reason: r.reason, Detail: "detail of " + r.reason.String(), Env: env, SenderDest: dest})
	}
	if _, err := s.Append(es); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	t.Cleanup(func() { checkFile(t, f.db) })
	return f
}

// checkFile runs bbolt's integrity check on the file.
func checkFile(t *testing.T, path string) {
	s, err := audit.Open(path, audit.Options{ReadOnly: true})
	if err != nil {
		t.Errorf("open %s for the check: %v", path, err)
		return
	}
	defer s.Close()
	if err := s.Check(); err != nil {
		t.Errorf("bbolt check of %s: %v", path, err)
	}
}

func (f *fixture) rfc(minutesAgo int) string {
	return f.now.Add(-time.Duration(minutesAgo) * time.Minute).UTC().Format(time.RFC3339Nano)
}

func TestQuery_EachFilter(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		name string
		args []string
		want []uint64
	}{
		{"all", nil, []uint64{1, 2, 3, 5, 6, 8}},
		{"rejected", []string{"-rejected"}, []uint64{4, 7}},
		{"since-duration", []string{"-since", "95m"}, []uint64{5, 6, 8}},
		{"until-duration", []string{"-until", "3h"}, []uint64{1, 2, 3}},
		{"since-rfc3339", []string{"-since", f.rfc(240)}, []uint64{2, 3, 5, 6, 8}},
		{"until-rfc3339", []string{"-until", f.rfc(90)}, []uint64{1, 2, 3, 5}},
		{"since-until", []string{"-since", "245m", "-until", "1h"}, []uint64{2, 3, 5, 6}},
		{"verb", []string{"-verb", "deploy"}, []uint64{2, 8}},
		{"verb-upper-case", []string{"-verb", "DEPLOY"}, []uint64{2, 8}},
		{"sender-key", []string{"-sender", f.bob.Public().String()}, []uint64{3, 6}},
		{"sender-nkey", []string{"-sender", f.bob.Public().NKey()}, []uint64{3, 6}},
		{"sender-dest", []string{"-sender", "com.example.alice"}, []uint64{1, 2, 5, 8}},
		{"uuid", []string{"-uuid", "b"}, []uint64{2, 5}},
		{"dest-name", []string{"-dest", "com.example.host1"}, []uint64{1, 2, 3, 5, 8}},
		{"dest-pattern", []string{"-dest", "com.other.*"}, []uint64{6}},
		{"limit", []string{"-limit", "2"}, []uint64{1, 2}},
		{"rejected-sender", []string{"-rejected", "-sender", "com.example.bob"}, []uint64{4}},
		{"rejected-verb", []string{"-rejected", "-verb", "ping"}, []uint64{7}},
		{"combined", []string{"-verb", "ping", "-dest", "com.example.host1", "-since", "301m"}, []uint64{1, 3}},
		{"none", []string{"-uuid", "zzz"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"query", "-db", f.db, "-json"}, c.args...)
			got := run(t, args...).want(t, ExitOK).jsonSeqs(t)
			if !slices.Equal(got, c.want) {
				t.Fatalf("query %v: %v, want %v", c.args, got, c.want)
			}
		})
	}
}

func TestQuery_Table(t *testing.T) {
	f := newFixture(t)
	out := run(t, "query", "-db", f.db, "-verb", "deploy").want(t, ExitOK).stdout
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("table:\n%s", out)
	}
	header := strings.Fields(lines[0])
	if !slices.Equal(header, []string{"SEQ", "STORED", "KIND", "VERB", "SENDER", "DEST", "UUID", "REQUEST", "EXIT", "PAYLOAD"}) {
		t.Fatalf("header %q", lines[0])
	}
	// Aligned: every column starts where its header does.
	col := strings.Index(lines[0], "SENDER")
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l[col:], "com.example.alice") {
			t.Fatalf("column SENDER not aligned:\n%s", out)
		}
		if !strings.Contains(l, `"payload\twith tab"`) {
			t.Fatalf("payload not quoted: %q", l)
		}
	}
	rej := run(t, "query", "-db", f.db, "-rejected").want(t, ExitOK).stdout
	if !strings.Contains(rej, "REASON") || !strings.Contains(rej, "verb-not-allowed") || !strings.Contains(rej, "stale") {
		t.Fatalf("refused table:\n%s", rej)
	}
}

func TestQuery_JSONFields(t *testing.T) {
	f := newFixture(t)
	out := run(t, "query", "-db", f.db, "-json", "-body", "-rejected", "-uuid", "d").want(t, ExitOK).stdout
	var j map[string]any
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("%q: %v", out, err)
	}
	for k, want := range map[string]any{"seq": 4.0, "verdict": "rejected", "reason": "verb-not-allowed", "verb": "deploy",
		"sender": f.bob.Public().String(), "sender_dest": "com.example.bob", "dest": "com.other.host2", "payload": "payload\twith tab"} {
		if j[k] != want {
			t.Errorf("%s = %v, want %v", k, j[k], want)
		}
	}
	for _, k := range []string{"body", "hash", "prev_hash", "id", "stored", "sent"} {
		if j[k] == nil || j[k] == "" {
			t.Errorf("no %s in %v", k, j)
		}
	}
}

// fileSum is the file's bytes' hash and its modification time.
func fileSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	return fmt.Sprintf("%x %v", sha256.Sum256(b), fi.ModTime())
}

func TestReadingCommandsNeverChangeTheFile(t *testing.T) {
	f := newFixture(t)
	before := fileSum(t, f.db)
	for _, args := range [][]string{
		{"query", "-db", f.db},
		{"query", "-db", f.db, "-json", "-rejected", "-since", "5h", "-verb", "ping"},
		{"query", "-db", f.db, "-dest", "com.example.host1", "-limit", "1"},
		{"query", "-db", f.db, "-sender", "com.example.bob", "-uuid", "c"},
		{"tail", "-db", f.db, "-n", "3"},
		{"verify", "-db", f.db},
		{"stats", "-db", f.db, "-json"},
	} {
		run(t, args...).want(t, ExitOK)
		if after := fileSum(t, f.db); after != before {
			t.Fatalf("%v changed the file", args)
		}
	}
}

func TestVerify_Command(t *testing.T) {
	f := newFixture(t)
	out := run(t, "verify", "-db", f.db).want(t, ExitOK).stdout
	if !strings.HasPrefix(out, "verify: ok: 6 accepted and 2 refused records checked; head seq 8 hash ") {
		t.Fatalf("verify output %q", out)
	}

	// One changed byte in record 5: verify fails and names it.
	edit(t, f.db, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("acc"))
		v := slices.Clone(b.Get(seqKey(5)))
		i := bytes.LastIndex(v, []byte("status"))
		v[i] = 'S'
		return b.Put(seqKey(5), v)
	})
	r := run(t, "verify", "-db", f.db).want(t, ExitFailed)
	if !strings.Contains(r.stdout, "accepted record seq 5: edited") || !strings.Contains(r.stdout, "verify: FAILED") {
		t.Fatalf("verify output:\n%s", r.stdout)
	}

	// Delete record 3: the gap is named.
	edit(t, f.db, func(tx *bolt.Tx) error { return tx.Bucket([]byte("acc")).Delete(seqKey(3)) })
	r = run(t, "verify", "-db", f.db, "-json").want(t, ExitFailed)
	if !strings.Contains(r.stdout, `"seq":5,"what":"gap","detail":"records missing between seq 2 and seq 5`) {
		t.Fatalf("verify -json:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, `{"summary":{"accepted":5,"rejected":2,"problems":`) {
		t.Fatalf("no summary:\n%s", r.stdout)
	}
}

func seqKey(seq uint64) []byte {
	return []byte{byte(seq >> 56), byte(seq >> 48), byte(seq >> 40), byte(seq >> 32), byte(seq >> 24), byte(seq >> 16), byte(seq >> 8), byte(seq)}
}

func edit(t *testing.T, path string, fn func(*bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func TestStats_Command(t *testing.T) {
	f := newFixture(t)
	out := run(t, "stats", "-db", f.db).want(t, ExitOK).stdout
	for _, want := range []string{"6 accepted, 2 refused", "head", "accepted", "verb-not-allowed", "deploy", "com.example.bob"} {
		if !strings.Contains(out, want) {
			t.Fatalf("stats does not say %q:\n%s", want, out)
		}
	}
	var st audit.Stats
	if err := json.Unmarshal([]byte(run(t, "stats", "-db", f.db, "-json").want(t, ExitOK).stdout), &st); err != nil {
		t.Fatal(err)
	}
	if st.Accepted != 6 || st.Rejected != 2 || len(st.Verbs) != 3 {
		t.Fatalf("stats -json %+v", st)
	}
}

func TestTail(t *testing.T) {
	f := newFixture(t)
	if got := run(t, "tail", "-db", f.db, "-n", "3", "-json").want(t, ExitOK).jsonSeqs(t); !slices.Equal(got, []uint64{5, 6, 8}) {
		t.Fatalf("tail -n 3: %v", got)
	}
	if got := run(t, "tail", "-db", f.db, "-json", "-verb", "ping").want(t, ExitOK).jsonSeqs(t); !slices.Equal(got, []uint64{1, 3, 6}) {
		t.Fatalf("tail -verb ping: %v", got)
	}
	// Nothing matches: exit 1.
	run(t, "tail", "-db", f.db, "-uuid", "zzz").want(t, ExitFailed)
}

func TestTail_Follow(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb proctest.Buffer
	done := make(chan int)
	go func() {
		done <- Run(ctx, []string{"tail", "-f", "-db", f.db, "-n", "1", "-json", "-interval", "20ms", "-verb", "ping"}, &out, &errb)
	}()
	waitFor := func(s string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(out.String(), s) {
			if time.Now().After(deadline) {
				t.Fatalf("tail -f never printed %s:\n%s\nstderr:\n%s", s, out.String(), errb.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor(`"seq":6,`)
	// New records, written as the auditor does (open, append, close).
	for seq := uint64(9); seq <= 11; seq++ {
		s, err := audit.Open(f.db, audit.Options{})
		if err != nil {
			t.Fatal(err)
		}
		verb := "ping"
		if seq == 10 {
			verb = "deploy"
		}
		env, _ := sign.Seal(&sign.Message{Kind: sign.KindMsg, Root: "remaphore", Channel: "all", Dest: "**", Verb: verb, Sent: time.Now()}, f.alice)
		if _, err := s.Append([]audit.Entry{{Seq: seq, Stored: time.Now(), Subject: "remaphore.msg.all", HeaderID: env.ID,
			Body: env.Body(), Env: env, SenderDest: "com.example.alice"}}); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	waitFor(`"seq":11,`)
	cancel()
	if code := <-done; code != ExitOK {
		t.Fatalf("tail -f exit %d: %s", code, errb.String())
	}
	var got []uint64
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var j struct{ Seq uint64 }
		json.Unmarshal([]byte(l), &j)
		got = append(got, j.Seq)
	}
	if !slices.Equal(got, []uint64{6, 9, 11}) {
		t.Fatalf("tail -f printed %v, want [6 9 11]", got)
	}
}

func TestUsageAndOpenErrors(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	user := natstest.NewUser(t, dir)
	noDB := filepath.Join(dir, "nodb.conf")
	os.WriteFile(noDB, []byte("server: nats://127.0.0.1:1\ncredentials: "+user.SeedFile+"\ndestination: com.example.audit\n"), 0o600)
	for _, c := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{nil, ExitUsage, "no command given"},
		{[]string{"frobnicate"}, ExitUsage, `unknown command "frobnicate"`},
		{[]string{"query", "-db", f.db, "-since", "yesterday"}, ExitUsage, "not a duration or an RFC 3339 time"},
		{[]string{"query", "-db", f.db, "-since", "1h", "-until", "2h"}, ExitUsage, "-until is before -since"},
		{[]string{"query", "-db", f.db, "-sender", "not a key!"}, ExitUsage, "neither a public key nor a destination"},
		{[]string{"query", "-db", f.db, "-dest", "a.**.b"}, ExitUsage, "-dest"},
		{[]string{"query", "-db", f.db, "-nosuchflag"}, ExitUsage, "flag provided but not defined"},
		{[]string{"query", "-db", f.db, "extra"}, ExitUsage, `unexpected argument "extra"`},
		{[]string{"query", "-c", filepath.Join(dir, "missing.conf")}, ExitUsage, "no configuration file"},
		{[]string{"query", "-c", noDB}, ExitUsage, "has no audit_db"},
		{[]string{"query", "-db", filepath.Join(dir, "missing.db")}, ExitBackend, "hint: start remaphore-audit run first"},
		{[]string{"verify", "-db", noDB}, ExitBackend, "not a remaphore-audit database"},
		{[]string{"run", "-c", noDB, "-db", filepath.Join(dir, "a.db")}, ExitBackend, "cannot connect"},
		{[]string{"run", "-c", noDB, "-db", filepath.Join(dir, "a.db"), "-max-rejected", "0"}, ExitUsage, "-max-rejected"},
		{[]string{"tail", "-db", f.db, "-n", "-1"}, ExitUsage, "negative"},
		{[]string{"stats", "-db", f.db, "-log", "loud"}, ExitUsage, "not a level"},
	} {
		r := run(t, c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.stderr) {
			t.Errorf("%v: exit %d, stderr:\n%s\nwant exit %d and %q", c.args, r.code, r.stderr, c.code, c.stderr)
		}
		if c.code != ExitOK && !strings.Contains(r.stderr, "remaphore-audit: error: ") {
			t.Errorf("%v: no error line:\n%s", c.args, r.stderr)
		}
		if r.stdout != "" {
			t.Errorf("%v: stdout %q on an error", c.args, r.stdout)
		}
	}
	if r := run(t, "help"); r.code != ExitOK || !strings.Contains(r.stdout, "remaphore-audit run") {
		t.Errorf("help: %d %q", r.code, r.stdout)
	}
	if r := run(t, "query", "-h"); r.code != ExitOK || !strings.Contains(r.stderr, "-rejected") {
		t.Errorf("query -h: %d %q", r.code, r.stderr)
	}
}

func TestBusyDatabaseIsAClearError(t *testing.T) {
	f := newFixture(t)
	w, err := audit.Open(f.db, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	start := time.Now()
	r := run(t, "query", "-db", f.db, "-wait", "200ms").want(t, ExitBackend)
	if !strings.Contains(r.stderr, "busy") || !strings.Contains(r.stderr, "hint: ") {
		t.Fatalf("stderr:\n%s", r.stderr)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("waited %s", d)
	}
}

func TestRun_DatabaseDirectoryMissing(t *testing.T) {
	dir := t.TempDir()
	user := natstest.NewUser(t, dir)
	conf := filepath.Join(dir, "a.conf")
	os.WriteFile(conf, []byte("server: nats://127.0.0.1:1\ncredentials: "+user.SeedFile+"\ndestination: com.example.audit\naudit_db: no/such/dir/audit.db\n"), 0o600)
	r := run(t, "run", "-c", conf).want(t, ExitBackend)
	if !strings.Contains(r.stderr, "no such file or directory") || !strings.Contains(r.stderr, "hint: create the database's directory") {
		t.Fatalf("stderr:\n%s", r.stderr)
	}
}

// TestLaterFormatIsNamed: a database a later remaphore-audit wrote is
// refused by every reading command with what to do, not as "not a
// remaphore-audit database".
func TestLaterFormatIsNamed(t *testing.T) {
	f := newFixture(t)
	setFormat := func(tag string) {
		db, err := bolt.Open(f.db, 0o600, &bolt.Options{Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte("format"), []byte(tag)) }); err != nil {
			t.Fatal(err)
		}
	}
	setFormat("remaphore-audit/9")
	defer setFormat("remaphore-audit/2") // for the fixture's own check
	for _, args := range [][]string{{"query"}, {"tail"}, {"verify"}, {"stats"}, {"receipts", "-uuid", "x"}} {
		cmd := args[0]
		r := run(t, append(args, "-db", f.db)...)
		if r.code != ExitBackend || !strings.Contains(r.stderr, `holds format "remaphore-audit/9"`) ||
			!strings.Contains(r.stderr, "hint: a later remaphore-audit wrote this file") {
			t.Errorf("%s: exit %d, stderr:\n%s", cmd, r.code, r.stderr)
		}
	}
}

// A server that is not there, or that refuses the credentials: exit 3
// with what to do about it.
func TestRun_ConnectErrorsHaveHints(t *testing.T) {
	dir := t.TempDir()
	user := natstest.NewUser(t, dir)
	conf := filepath.Join(dir, "a.conf")
	write := func(server string) {
		os.WriteFile(conf, []byte("server: "+server+"\ncredentials: "+user.SeedFile+"\ndestination: com.example.audit\naudit_db: "+filepath.Join(dir, "audit.db")+"\n"), 0o600)
	}
	write("nats://127.0.0.1:1")
	r := run(t, "run", "-c", conf).want(t, ExitBackend)
	if !strings.Contains(r.stderr, "cannot connect to NATS") || !strings.Contains(r.stderr, "hint: check that a NATS server listens at the server: lines of "+conf) {
		t.Errorf("server down: stderr:\n%s", r.stderr)
	}
	c := natstest.Start(t) // its own user, not user
	write(c.URLs()[0])
	r = run(t, "run", "-c", conf).want(t, ExitBackend)
	if !strings.Contains(r.stderr, "refused the credentials") || !strings.Contains(r.stderr, "hint: the server has no user for the seed in "+user.SeedFile) {
		t.Errorf("credentials refused: stderr:\n%s", r.stderr)
	}
}
