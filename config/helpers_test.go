package config

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/remaphore/remaphore/sign"
)

// testKey returns a deterministic key for seed n.
func testKey(t testing.TB, n uint64) sign.PrivateKey {
	t.Helper()
	var s [32]byte
	s[0] = byte(n)
	s[1] = byte(n >> 8)
	k, err := sign.GenerateKey(rand.NewChaCha8(s))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// diffConfig describes how a and b differ, or returns "" when they are
// equal. Private keys are compared by their base58 form and verbs by their
// configuration form, since both hold slices.
func diffConfig(a, b *Config) string {
	var d []string
	add := func(field string, x, y any) {
		if fmt.Sprint(x) != fmt.Sprint(y) {
			d = append(d, fmt.Sprintf("%s: %q != %q", field, fmt.Sprint(x), fmt.Sprint(y)))
		}
	}
	add("Path", a.Path, b.Path)
	if !slices.Equal(a.Servers, b.Servers) {
		d = append(d, fmt.Sprintf("Servers: %q != %q", a.Servers, b.Servers))
	}
	add("Credentials", a.Credentials, b.Credentials)
	add("Subject", a.Subject, b.Subject)
	add("DefaultIdentity", a.DefaultIdentity, b.DefaultIdentity)
	add("Destination", a.Destination, b.Destination)
	add("AllowSkew", a.AllowSkew, b.AllowSkew)
	add("Stream", a.Stream, b.Stream)
	add("Replicas", a.Replicas, b.Replicas)
	add("Retention", a.Retention, b.Retention)
	add("MaxConsumers", a.MaxConsumers, b.MaxConsumers)
	add("MaxBytes", a.MaxBytes, b.MaxBytes)
	add("Heartbeat", a.Heartbeat, b.Heartbeat)
	add("TLSCA", a.TLSCA, b.TLSCA)
	add("TLSCert", a.TLSCert, b.TLSCert)
	add("TLSKey", a.TLSKey, b.TLSKey)
	add("AuditDB", a.AuditDB, b.AuditDB)
	add("AuditRefusedMax", a.AuditRefusedMax, b.AuditRefusedMax)
	add("AuditMetrics", a.AuditMetrics, b.AuditMetrics)
	add("Receipts", a.Receipts, b.Receipts)
	if len(a.Identities) != len(b.Identities) {
		d = append(d, fmt.Sprintf("Identities: %d != %d", len(a.Identities), len(b.Identities)))
	} else {
		for i := range a.Identities {
			x, y := a.Identities[i], b.Identities[i]
			if x.Key.Base58() != y.Key.Base58() || x.Key.Public() != y.Key.Public() {
				d = append(d, fmt.Sprintf("Identities[%d]: key %s != %s", i, x.Key.Public(), y.Key.Public()))
			}
			add(fmt.Sprintf("Identities[%d].Verbs", i), x.Verbs, y.Verbs)
			add(fmt.Sprintf("Identities[%d].Verbs.All", i), x.Verbs.All(), y.Verbs.All())
		}
	}
	if len(a.Peers) != len(b.Peers) {
		d = append(d, fmt.Sprintf("Peers: %d != %d", len(a.Peers), len(b.Peers)))
	} else {
		for i := range a.Peers {
			x, y := a.Peers[i], b.Peers[i]
			add(fmt.Sprintf("Peers[%d].Dest", i), x.Dest, y.Dest)
			add(fmt.Sprintf("Peers[%d].Key", i), x.Key, y.Key)
			add(fmt.Sprintf("Peers[%d].Verbs", i), x.Verbs, y.Verbs)
			add(fmt.Sprintf("Peers[%d].Verbs.All", i), x.Verbs.All(), y.Verbs.All())
		}
	}
	return strings.Join(d, "\n")
}

// roundTrip checks that Parse(Format(c)) gives c back.
func roundTrip(t testing.TB, c *Config) {
	t.Helper()
	out := c.Format()
	c2, err := Parse(c.Path, out)
	if err != nil {
		t.Fatalf("Parse(Format(c)): %v\n%s", err, out)
	}
	if d := diffConfig(c, c2); d != "" {
		t.Fatalf("Parse(Format(c)) differs:\n%s\nformatted:\n%s", d, out)
	}
	if again := c2.Format(); string(again) != string(out) {
		t.Fatalf("Format is not stable:\n%s\n---\n%s", out, again)
	}
}
