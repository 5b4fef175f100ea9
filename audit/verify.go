package audit

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"runtime"
	"slices"
	"sync"

	bolt "go.etcd.io/bbolt"

	"github.com/remaphore/remaphore/sign"
)

// Problem is one thing verify found wrong.
type Problem struct {
	// Kind is "accepted" or "rejected" (the chain), or "" for the file.
	Kind string `json:"kind,omitempty"`
	// Seq is the record concerned, or 0 for the file or a chain's end.
	Seq uint64 `json:"seq,omitempty"`
	// What classifies it:
	//
	//	edited      the record's hash does not match its bytes
	//	unreadable  the record does not parse
	//	gap         records missing before this one (deleted)
	//	link        the record links to a previous record that changed
	//	signature   the body no longer verifies (accepted records)
	//	fields      the stored fields differ from the body's
	//	index       an index entry missing or pointing nowhere
	//	head        the chain's head or count disagrees with the records
	//	structure   bbolt's own page check failed
	What   string `json:"what"`
	Detail string `json:"detail"`
}

func (p Problem) String() string {
	switch {
	case p.Kind == "":
		return fmt.Sprintf("%s: %s", p.What, p.Detail)
	case p.Seq == 0:
		return fmt.Sprintf("%s chain: %s: %s", p.Kind, p.What, p.Detail)
	}
	return fmt.Sprintf("%s record seq %d: %s: %s", p.Kind, p.Seq, p.What, p.Detail)
}

// VerifyResult sums up a verify run.
type VerifyResult struct {
	Accepted     uint64    `json:"accepted"`
	Rejected     uint64    `json:"rejected"`
	Problems     int       `json:"problems"`
	Head         ChainHead `json:"head"`
	RejectedHead ChainHead `json:"rejected_head"`
	// Gaps are the runs of stream sequences the auditor never recorded
	// because the stream no longer held them (see [Gap]). They are not
	// problems of the file: the caller decides whether any is acceptable.
	Gaps    []Gap     `json:"gaps"`
	GapSeqs uint64    `json:"gap_seqs"`
	GapHead ChainHead `json:"gap_head"`
}

// Verify re-checks the whole store in one read transaction: bbolt's page
// structure; for each chain, in sequence order, every record's hash, its
// link to the record before it (a deleted record shows as a gap naming the
// missing range), and the head; every accepted record's signature (sign.Open)
// and id; that the stored fields are what the body says; and that every
// index entry exists and points to a record. Problems are passed to report
// in chain and sequence order once the walk is done. Signatures are checked
// on all CPUs.
//
// Refused records are a chain of their own: the oldest are evicted by the
// cap, and the chain then starts at the anchor (the last evicted record's
// link), so eviction never reads as a gap.
func (s *Store) Verify(report func(Problem)) (VerifyResult, error) {
	var res VerifyResult
	var problems []Problem
	var mu sync.Mutex
	add := func(p Problem) {
		mu.Lock()
		problems = append(problems, p)
		mu.Unlock()
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		for ki, k := range kinds {
			start, headKey, countKey := link{}, metaHeadA, metaCountA
			if k == kindRejected {
				start, headKey, countKey = readLink(m, metaAnchorR), metaHeadR, metaCountR
			}
			n, last := verifyKind(tx, k, start, add)
			head := readLink(m, headKey)
			if ki == 0 {
				res.Accepted, res.Head = n, head.head()
			} else {
				res.Rejected, res.RejectedHead = n, head.head()
			}
			switch {
			case head.seq > last.seq:
				add(Problem{Kind: k.name, What: "gap", Detail: fmt.Sprintf("records after seq %d are missing: the head is seq %d", last.seq, head.seq)})
			case head.seq < last.seq:
				add(Problem{Kind: k.name, What: "head", Detail: fmt.Sprintf("record seq %d is past the head (seq %d): written outside the auditor", last.seq, head.seq)})
			case head.hash != last.hash:
				add(Problem{Kind: k.name, What: "head", Detail: fmt.Sprintf("the head's hash differs from record seq %d's: the record was changed", last.seq)})
			}
			if c := readU64(m, countKey); c != n {
				add(Problem{Kind: k.name, What: "head", Detail: fmt.Sprintf("the store counts %d records, %d found", c, n)})
			}
		}
		res.Gaps = verifyGaps(tx, add)
		for i := range res.Gaps {
			if res.Gaps[i].Last >= res.Gaps[i].First {
				res.GapSeqs += res.Gaps[i].Count()
			}
		}
		res.GapHead = readLink(m, metaHeadG).head()
		// bbolt's page check last: it runs on a goroutine of its own,
		// where a fault on a damaged page cannot be recovered and ends
		// the process. The walk above reads every page of the records
		// and indexes first, on the caller's goroutine, which the
		// caller may guard (debug.SetPanicOnFault, as remaphore-audit
		// does).
		for err := range tx.Check() {
			add(Problem{What: "structure", Detail: err.Error()})
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	order := map[string]int{"": 0, kindAccepted.name: 1, kindRejected.name: 2, "gap": 3}
	slices.SortStableFunc(problems, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(order[a.Kind], order[b.Kind]), cmp.Compare(a.Seq, b.Seq))
	})
	for _, p := range problems {
		report(p)
	}
	res.Problems = len(problems)
	return res, nil
}

// verifyJob is a batch of records whose bodies the workers check.
type verifyJob struct {
	recs []*Record
}

// verifyKind walks one chain; it returns the number of records and the
// last link.
func verifyKind(tx *bolt.Tx, k *kind, prev link, add func(Problem)) (uint64, link) {
	rec := tx.Bucket(k.rec)
	var ix [numIx]*ixFinder
	var ixCount, ixMissing [numIx]uint64
	for i := range ix {
		ix[i] = &ixFinder{c: tx.Bucket(k.ix[i]).Cursor()}
	}
	problem := func(seq uint64, what, format string, args ...any) {
		add(Problem{Kind: k.name, Seq: seq, What: what, Detail: fmt.Sprintf(format, args...)})
	}

	jobs := make(chan verifyJob, 4)
	keys := &verifiers{m: map[sign.PublicKey]*sign.Verifier{}}
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for j := range jobs {
				for _, r := range j.recs {
					if what, detail := checkBody(k, r, keys); what != "" {
						problem(r.Seq, what, "%s", detail)
					}
				}
			}
		})
	}
	const jobSize = 64
	batch := make([]*Record, 0, jobSize)

	var n uint64
	var keyBuf []byte
	c := rec.Cursor()
	for key, v := c.First(); key != nil; key, v = c.Next() {
		n++
		if len(key) != 8 {
			problem(0, "unreadable", "a key of %d bytes (%x) in the record bucket", len(key), key)
			continue
		}
		seq := binary.BigEndian.Uint64(key)
		r, err := decodeRecord(v, false)
		if err != nil {
			problem(seq, "unreadable", "%v", err)
			prev.seq = seq
			if len(v) >= HashSize {
				copy(prev.hash[:], v[len(v)-HashSize:])
			}
			continue
		}
		if r.Seq != seq {
			problem(seq, "edited", "the record says seq %d: moved from another key", r.Seq)
		}
		if err := checkRecord(v, r); err != nil {
			problem(seq, "edited", "%v", err)
		}
		switch {
		case r.PrevSeq > prev.seq && prev.seq == 0:
			problem(seq, "gap", "records before seq %d are missing: this record follows seq %d, which is gone", seq, r.PrevSeq)
		case r.PrevSeq > prev.seq:
			problem(seq, "gap", "records missing between seq %d and seq %d: this record follows seq %d, which is gone", prev.seq, seq, r.PrevSeq)
		case r.PrevSeq < prev.seq:
			problem(prev.seq, "link", "not in the chain: seq %d links past it to seq %d (inserted outside the auditor)", seq, r.PrevSeq)
		case r.PrevHash != prev.hash:
			problem(seq, "link", "its link to seq %d does not match that record's hash: seq %d was changed after this record was written", prev.seq, prev.seq)
		}
		prev = link{seq, r.Hash}
		for i := range ix {
			var ok bool
			keyBuf, ok = indexKey(keyBuf[:0], r, i)
			if !ok {
				continue
			}
			ixCount[i]++
			if !ix[i].has(keyBuf) {
				ixMissing[i]++
				problem(seq, "index", "no entry in the %s index", ixNames[i])
			}
		}
		batch = append(batch, r)
		if len(batch) == jobSize {
			jobs <- verifyJob{recs: batch}
			batch = make([]*Record, 0, jobSize)
		}
	}
	if len(batch) > 0 {
		jobs <- verifyJob{recs: batch}
	}
	close(jobs)
	wg.Wait()

	// Entries that point to no record: counted first, named when the
	// counts disagree or a record's entry was missing (an entry moved
	// elsewhere keeps the count). The count reads every chunk, and checks
	// that the entries are in order: a chunk overlapping another entry
	// would make queries return records out of order.
	for i := range ix {
		b := tx.Bucket(k.ix[i])
		got, bad := countEntries(b, func(key []byte, format string, args ...any) {
			_, _, seq, _ := splitIndexKey(key)
			problem(seq, "index", "the %s index %s", ixNames[i], fmt.Sprintf(format, args...))
		})
		if got == ixCount[i] && !bad && ixMissing[i] == 0 {
			continue
		}
		// A crafted chunk holds an entry in two bytes: past
		// maxNamedStrays, stray entries are counted, not named one by
		// one (a problem each would take a hundred times the file).
		var named, more uint64
		stray := func(seq uint64, format string, args ...any) {
			if named++; named > maxNamedStrays {
				more++
				return
			}
			problem(seq, "index", format, args...)
		}
		c := b.Cursor()
		var es []ixEntry
		for key, v := c.First(); key != nil; key, v = c.Next() {
			prefix, stored, seq, ok := splitIndexKey(key)
			if !ok {
				problem(0, "index", "the %s index holds a key of %d bytes (%x)", ixNames[i], len(key), key)
				continue
			}
			es, _ = decodeChunk(es[:0], ixEntry{stored, seq}, v)
			for _, e := range es {
				ekey := entryKey(nil, prefix, e)
				v := rec.Get(seqKey(e.seq))
				if v == nil {
					stray(e.seq, "the %s index holds an entry (%x) for a record that is not there", ixNames[i], ekey)
					continue
				}
				if r, err := decodeRecord(v, false); err == nil {
					if want, ok := indexKey(nil, r, i); !ok || !bytes.Equal(want, ekey) {
						stray(e.seq, "the %s index holds an entry (%x) that does not match the record", ixNames[i], ekey)
					}
				}
			}
		}
		if more > 0 {
			problem(0, "index", "the %s index holds %d more entries for records that are not there or that do not match them (the first %d are named)", ixNames[i], more, maxNamedStrays)
		}
	}
	return n, prev
}

// maxNamedStrays bounds the stray entries of one index that verify names
// one by one.
const maxNamedStrays = 1000

// ixFinder looks up index entries, in keys of their own or in chunks; it
// keeps the chunks it decoded, as records read in sequence order meet the
// same few chunks again and again.
type ixFinder struct {
	c      *bolt.Cursor
	chunks map[string][]ixEntry
}

// has reports whether the entry with key is in the index.
func (f *ixFinder) has(key []byte) bool {
	k, _ := f.c.Seek(key)
	if bytes.Equal(k, key) {
		return true
	}
	var v []byte
	if k == nil {
		k, v = f.c.Last()
	} else {
		k, v = f.c.Prev()
	}
	prefix, stored, seq, ok := splitIndexKey(key)
	k, v = backToRun(f.c, prefix, k, v)
	if !ok || !inRun(k, prefix) || len(v) == 0 {
		return false
	}
	es, hit := f.chunks[string(k)]
	if !hit {
		_, cs, cq, _ := splitIndexKey(k)
		es, _ = decodeChunk(nil, ixEntry{cs, cq}, v)
		if f.chunks == nil || len(f.chunks) >= 64 {
			f.chunks = map[string][]ixEntry{}
		}
		f.chunks[string(k)] = es
	}
	want := ixEntry{stored, seq}
	_, found := slices.BinarySearchFunc(es, want, ixEntry.cmp)
	return found
}

// countEntries returns the number of entries in index bucket b, and
// whether a key or chunk was unreadable or out of order, each told to
// problem.
func countEntries(b *bolt.Bucket, problem func(key []byte, format string, args ...any)) (n uint64, bad bool) {
	c := b.Cursor()
	var es []ixEntry
	var prevPrefix []byte
	var prev ixEntry
	for key, v := c.First(); key != nil; key, v = c.Next() {
		prefix, stored, seq, ok := splitIndexKey(key)
		if !ok {
			bad = true
			continue
		}
		var err error
		es, err = decodeChunk(es[:0], ixEntry{stored, seq}, v)
		if err != nil {
			problem(key, "holds an unreadable chunk at %x: %v", key, err)
			bad = true
		}
		if bytes.Equal(prefix, prevPrefix) && es[0].cmp(prev) <= 0 {
			problem(key, "holds entries out of order at %x: a chunk before it reaches past it", key)
			bad = true
		}
		n += uint64(len(es))
		prevPrefix, prev = append(prevPrefix[:0], prefix...), es[len(es)-1]
	}
	return n, bad
}

// verifiers keeps one signature verifier per sender key met in a verify
// run, so that a sender's many records share its precomputed tables.
type verifiers struct {
	mu sync.Mutex
	m  map[sign.PublicKey]*sign.Verifier
}

// maxVerifiers bounds the keys given a Verifier (each may grow ~100 KiB of
// tables). A file is checked because it may have been tampered with, and
// one crafted with signatures by a million keys must not exhaust memory:
// keys past the bound are checked by crypto/ed25519 alone.
const maxVerifiers = 1024

func (vs *verifiers) get(k sign.PublicKey) *sign.Verifier {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	v, ok := vs.m[k]
	if !ok && len(vs.m) < maxVerifiers {
		v = sign.NewVerifier(k)
		vs.m[k] = v
	}
	return v
}

// checkBody re-checks a record's body: it decodes, its fields are the ones
// stored, and for an accepted record its signature verifies and its id is
// the Nats-Msg-Id it arrived with.
func checkBody(k *kind, r *Record, keys *verifiers) (what, detail string) {
	if k == kindAccepted {
		if !r.Accepted() {
			return "fields", fmt.Sprintf("an accepted record with reason %q", r.Reason)
		}
		env, err := sign.Decode(r.Body)
		if err != nil {
			return "signature", err.Error()
		}
		if err := env.VerifyWith(keys.get(env.Sender)); err != nil {
			return "signature", err.Error()
		}
		if env.ID != r.HeaderID {
			return "fields", fmt.Sprintf("the body's id %.16s… is not the Nats-Msg-Id %.16s… it was accepted with", env.ID, r.HeaderID)
		}
		if f := r.sameFields(env); f != "" {
			return "fields", fmt.Sprintf("the stored %s differs from the signed body's", f)
		}
		return "", ""
	}
	if r.Accepted() {
		return "fields", "a refused record with reason \"accepted\""
	}
	if r.version == recordVersionRefused {
		switch {
		case uint64(len(r.Body)) > r.BodySize || len(r.Body) > RefusedKeep || len(r.Payload) > RefusedKeep:
			return "fields", fmt.Sprintf("keeps %d bytes of a %d-byte body (at most %d are kept)", len(r.Body), r.BodySize, RefusedKeep)
		case r.Truncated():
			// Only the first part is kept: nothing more to compare it
			// with than the record's own hash.
			return "", ""
		case sha256.Sum256(r.Body) != r.BodySHA256:
			return "fields", "the body's SHA-256 is not the one stored with it"
		}
	}
	env, err := sign.Decode(r.Body)
	switch {
	case err != nil && r.Decoded:
		return "fields", fmt.Sprintf("the record holds decoded fields but the body does not decode: %v", err)
	case err == nil && !r.Decoded:
		return "fields", "the body decodes but the record holds no decoded fields"
	case err == nil:
		if f := r.sameFields(env); f != "" {
			return "fields", fmt.Sprintf("the stored %s differs from the body's", f)
		}
	}
	return "", ""
}
