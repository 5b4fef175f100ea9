package config

import "strings"

// This file holds the did-you-mean for unknown keys.

// suggest returns the known key closest to name, or "".
func suggest(name string) string {
	norm := strings.NewReplacer("-", "_", " ", "_", ".", "_").Replace(name)
	best, bestD := "", 3
	for _, k := range keys {
		if norm == k.name {
			return k.name
		}
		if d := Distance(norm, k.name); d < bestD {
			best, bestD = k.name, d
		}
	}
	return best
}

// Distance is the Levenshtein distance of a and b (bytes), for did-you-mean
// suggestions; a longer than 64 bytes counts as far from anything.
func Distance(a, b string) int {
	if len(a) > 64 {
		return len(a)
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
