package sign

import (
	"crypto/ed25519"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/remaphore/remaphore/internal/edverify"
)

// warmAfter is how many valid signatures a Verifier checks with
// crypto/ed25519 before it prepares its key's tables. Preparing costs about eight
// verifications and each later one is three to four times cheaper, so a key
// that signs a handful of messages never pays for tables it does not
// need, and one that signs many pays them back within a few dozen.
const warmAfter = 8

// maxTables bounds how many keys hold tables at once in one process (~100 KiB
// each, so ~100 MiB at most). An auditor trusting thousands of responders
// that each answer a few requests would otherwise grow a table for every
// one of them; keys past the bound are checked by crypto/ed25519 alone.
var (
	maxTables   int32 = 1024
	tablesBuilt atomic.Int32
)

// A Verifier checks signatures by one public key, with the same answers
// as crypto/ed25519.Verify. A key seen often (the auditor reads every
// message of every peer) is verified through precomputed tables
// (internal/edverify). Safe for concurrent use.
type Verifier struct {
	pub  PublicKey
	uses atomic.Uint32
	once sync.Once
	fast atomic.Pointer[edverify.Key]
}

// NewVerifier returns a Verifier for pub. It does no work until used.
func NewVerifier(pub PublicKey) *Verifier { return &Verifier{pub: pub} }

// Verify reports whether sig is the key's valid signature of data.
func (v *Verifier) Verify(data, sig []byte) bool {
	if k := v.fast.Load(); k != nil {
		return k.Verify(data, sig)
	}
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(v.pub[:], data, sig) {
		// Only valid signatures count toward warmAfter: anyone who may
		// publish can send forgeries in a peer's name, and they must not
		// make a process build (and keep) tables for that peer.
		return false
	}
	if v.uses.Add(1) > warmAfter {
		v.once.Do(func() {
			if tablesBuilt.Add(1) > maxTables {
				tablesBuilt.Add(-1)
				return // this key stays with crypto/ed25519
			}
			v.fast.Store(edverify.NewKey(v.pub))
			// The tables go with the Verifier; so does their count.
			runtime.AddCleanup(v, func(struct{}) { tablesBuilt.Add(-1) }, struct{}{})
		})
	}
	return true
}

// VerifyWith checks the signature with v, which must be the Verifier of
// the envelope's sender; it decides exactly as Verify.
func (e *Envelope) VerifyWith(v *Verifier) error {
	if v == nil || v.pub != e.Sender {
		return e.Verify()
	}
	if !v.Verify(e.Signed, e.Signature[:]) {
		return fmt.Errorf("%w: signature does not verify for sender %s", ErrBadSignature, e.Sender)
	}
	return nil
}
