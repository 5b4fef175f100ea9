package node

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/remaphore/remaphore/config"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/sign"
)

// Receipts are off by default; receipts: true without an identity turns
// them off with one warning at start that says why.
func TestInitReceipts(t *testing.T) {
	k, err := sign.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	withID := []policy.Identity{{Key: k, Verbs: policy.AllVerbs()}}
	for _, tc := range []struct {
		name     string
		receipts bool
		ids      []policy.Identity
		on       bool
		warn     string
	}{
		{"default off", false, withID, false, ""},
		{"on", true, withID, true, ""},
		{"on, no identity", true, nil, false, "receipts are off: the config sets receipts: true but has no [ Identities ]"},
	} {
		var logs bytes.Buffer
		r := &Receiver{cfg: &config.Config{Receipts: tc.receipts, Identities: tc.ids}, log: slog.New(slog.NewTextHandler(&logs, nil))}
		r.initReceipts()
		if r.ReceiptsOn() != tc.on {
			t.Errorf("%s: ReceiptsOn %v", tc.name, r.ReceiptsOn())
		}
		if got := logs.String(); (tc.warn == "") != (got == "") || !strings.Contains(got, tc.warn) || strings.Count(got, "\n") > 1 {
			t.Errorf("%s: log %q, want %q", tc.name, got, tc.warn)
		}
	}
}
