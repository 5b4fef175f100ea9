package node

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"
)

// Defaults of a RefusalLog: per reason, the first DefaultRefusalBurst
// refusals of each DefaultRefusalInterval are logged one by one.
const (
	DefaultRefusalBurst    = 10
	DefaultRefusalInterval = time.Minute
)

// RefusalLog logs refused messages without letting a publisher flood the
// log: anyone who may publish on the subject can make every waiting host
// refuse thousands of messages a second. Per reason, the first burst
// refusals of each interval are logged one by one; the rest are counted
// and reported in one summary line when the interval ends (or at Flush),
// so an attack stays visible as what it is, at a bounded cost. Safe for
// concurrent use.
type RefusalLog struct {
	log      *slog.Logger
	msg      string
	burst    int
	interval time.Duration

	mu         sync.Mutex
	start      time.Time      // of the current interval
	seen       map[string]int // refusals per reason in this interval
	suppressed map[string]int
	level      slog.Level // highest level among the suppressed
	timer      *time.Timer
}

// NewRefusalLog logs refusals as msg on log; burst and interval default
// to DefaultRefusalBurst and DefaultRefusalInterval when 0.
func NewRefusalLog(log *slog.Logger, msg string, burst int, interval time.Duration) *RefusalLog {
	if burst <= 0 {
		burst = DefaultRefusalBurst
	}
	if interval <= 0 {
		interval = DefaultRefusalInterval
	}
	return &RefusalLog{log: log, msg: msg, burst: burst, interval: interval,
		seen: map[string]int{}, suppressed: map[string]int{}}
}

// Log logs one refusal for reason at level with attrs, or counts it.
func (l *RefusalLog) Log(level slog.Level, reason string, attrs ...any) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	l.mu.Lock()
	now := time.Now()
	if now.Sub(l.start) >= l.interval {
		l.flushLocked()
		l.start = now
		clear(l.seen)
	}
	l.seen[reason]++
	if l.seen[reason] <= l.burst {
		l.mu.Unlock()
		l.log.Log(context.Background(), level, l.msg, append([]any{"reason", reason}, attrs...)...)
		return
	}
	if len(l.suppressed) == 0 {
		l.level = level
		l.timer = time.AfterFunc(l.start.Add(l.interval).Sub(now), l.Flush)
	}
	l.level = max(l.level, level)
	l.suppressed[reason]++
	l.mu.Unlock()
}

// Flush writes the summary of what was counted and not logged, if any.
func (l *RefusalLog) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked()
}

func (l *RefusalLog) flushLocked() {
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	if len(l.suppressed) == 0 {
		return
	}
	counts := make([]any, 0, len(l.suppressed))
	total := 0
	for _, reason := range slices.Sorted(maps.Keys(l.suppressed)) {
		counts = append(counts, slog.Int(reason, l.suppressed[reason]))
		total += l.suppressed[reason]
	}
	l.log.Log(context.Background(), l.level, "refusals not logged one by one", "of", l.msg, "count", total,
		"since", l.start.Format(time.RFC3339), "logged_per_reason", l.burst, "per", l.interval, slog.Group("suppressed", counts...))
	clear(l.suppressed)
}
