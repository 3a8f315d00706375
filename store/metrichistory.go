package store

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"time"

	"gorm.io/gorm/clause"
)

// Metric history (migration 00003): per worker and minute, what the
// console charts over 1 h and 24 h. The lag histogram is stored as bucket
// counts over the fixed bounds LagBuckets (not cumulative, last entry the
// overflow), so the minutes of several workers add up bucket by bucket and
// a quantile of the sum is a true quantile of the cluster. Rows are kept
// MetricsMaxAge (RetentionConfig, 7 days by default).

// LagBuckets are the upper bounds of the ZooKeeper-to-registry lag
// histogram: 1 ms doubling to 32.768 s, the syncer's
// ferry_sync_zk_to_registry_seconds buckets. MetricMinute.Lag has one
// entry per bound plus the overflow.
var LagBuckets = func() []time.Duration {
	out := make([]time.Duration, 16)
	for i := range out {
		out[i] = time.Millisecond << i
	}
	return out
}()

// MetricMinute is one worker's counters for one minute.
type MetricMinute struct {
	WorkerID string `json:",omitempty"` // "" once merged (MergeMetricMinutes)
	// Minute is the minute's start (UTC, truncated), by the worker's clock.
	Minute time.Time
	// Beats: instance beats sent; Errors: failed registry calls.
	Beats, Errors int64
	// Lag: changes applied per lag bucket (len(LagBuckets)+1 entries, or
	// none when nothing was applied).
	Lag []int64
}

type metricRow struct {
	WorkerID string `gorm:"column:worker_id;primaryKey"`
	MinuteMS int64  `gorm:"column:minute_ms;primaryKey;autoIncrement:false"`
	Beats    int64  `gorm:"column:beats"`
	Errors   int64  `gorm:"column:errors"`
	Lag      string `gorm:"column:lag"`
}

func (metricRow) TableName() string { return "worker_metrics" }

// PutMetricMinutes upserts minutes: a row for the same worker and minute is
// replaced, so a worker may write its running totals of the current minute
// several times.
func (s *Store) PutMetricMinutes(ctx context.Context, ms ...MetricMinute) error {
	if len(ms) == 0 {
		return nil
	}
	rows := make([]metricRow, 0, len(ms))
	for _, m := range ms {
		switch {
		case m.WorkerID == "" || len(m.WorkerID) > 128:
			return fmt.Errorf("%w metric minute worker %q", ErrInvalid, m.WorkerID)
		case m.Minute.IsZero() || !m.Minute.Equal(m.Minute.Truncate(time.Minute)):
			return fmt.Errorf("%w metric minute minute %v: want a whole minute", ErrInvalid, m.Minute)
		case len(m.Lag) != 0 && len(m.Lag) != len(LagBuckets)+1:
			return fmt.Errorf("%w metric minute lag: %d buckets, want %d", ErrInvalid, len(m.Lag), len(LagBuckets)+1)
		case m.Beats < 0 || m.Errors < 0:
			return fmt.Errorf("%w metric minute beats %d errors %d", ErrInvalid, m.Beats, m.Errors)
		}
		lag := m.Lag
		if lag == nil {
			lag = []int64{}
		}
		b, _ := json.Marshal(lag)
		rows = append(rows, metricRow{WorkerID: m.WorkerID, MinuteMS: m.Minute.UnixMilli(), Beats: m.Beats, Errors: m.Errors, Lag: string(b)})
	}
	err := s.q(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "worker_id"}, {Name: "minute_ms"}},
		DoUpdates: clause.AssignmentColumns([]string{"beats", "errors", "lag"}),
	}).CreateInBatches(rows, 500).Error
	return s.wrap(err, "put metric minutes")
}

// ListMetricMinutes returns the minutes in [since, until) of every worker
// (worker "" ) or of one, by minute then worker.
func (s *Store) ListMetricMinutes(ctx context.Context, worker string, since, until time.Time) ([]MetricMinute, error) {
	q := s.q(ctx).Where("minute_ms >= ? AND minute_ms < ?", since.UnixMilli(), until.UnixMilli()).Order("minute_ms, worker_id")
	if worker != "" {
		q = q.Where("worker_id = ?", worker)
	}
	var rows []metricRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, s.wrap(err, "list metric minutes")
	}
	out := make([]MetricMinute, 0, len(rows))
	for _, r := range rows {
		m := MetricMinute{WorkerID: r.WorkerID, Minute: time.UnixMilli(r.MinuteMS).UTC(), Beats: r.Beats, Errors: r.Errors}
		if err := json.Unmarshal([]byte(r.Lag), &m.Lag); err != nil {
			return nil, fmt.Errorf("store: metric minute %s/%d lag %q: %w", r.WorkerID, r.MinuteMS, r.Lag, err)
		}
		if len(m.Lag) == 0 {
			m.Lag = nil
		}
		out = append(out, m)
	}
	return out, nil
}

// PruneMetricMinutes deletes minutes that started before before.
func (s *Store) PruneMetricMinutes(ctx context.Context, before time.Time) (int64, error) {
	res := s.q(ctx).Exec("DELETE FROM worker_metrics WHERE minute_ms < ?", before.UnixMilli())
	return res.RowsAffected, s.checked(ctx, res, "prune metric minutes")
}

// MergeMetricMinutes sums ms per minute over workers (WorkerID ""), by
// minute. Lag histograms add bucket by bucket.
func MergeMetricMinutes(ms []MetricMinute) []MetricMinute {
	by := map[int64]*MetricMinute{}
	for _, m := range ms {
		k := m.Minute.UnixMilli()
		acc := by[k]
		if acc == nil {
			acc = &MetricMinute{Minute: m.Minute.UTC()}
			by[k] = acc
		}
		acc.Beats += m.Beats
		acc.Errors += m.Errors
		acc.Lag = AddLag(acc.Lag, m.Lag)
	}
	out := make([]MetricMinute, 0, len(by))
	for _, m := range by {
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Minute.Before(out[j].Minute) })
	return out
}

// AddLag returns the bucket-wise sum of two lag histograms (either may be
// empty).
func AddLag(a, b []int64) []int64 {
	if len(b) == 0 {
		return a
	}
	out := make([]int64, max(len(a), len(b)))
	copy(out, a)
	for i, n := range b {
		out[i] += n
	}
	return out
}

// LagQuantile estimates the q-quantile (0 < q ≤ 1) of a lag histogram by
// linear interpolation inside the bucket that holds it, as Prometheus'
// histogram_quantile does; the overflow bucket answers its lower bound.
// ok is false for an empty histogram.
func LagQuantile(lag []int64, q float64) (d time.Duration, ok bool) {
	var total int64
	for _, n := range lag {
		total += n
	}
	if total == 0 || q <= 0 || q > 1 || math.IsNaN(q) {
		return 0, false
	}
	rank := q * float64(total)
	var seen int64
	for i, n := range lag {
		if n == 0 || float64(seen+n) < rank {
			seen += n
			continue
		}
		if i >= len(LagBuckets) {
			return LagBuckets[len(LagBuckets)-1], true
		}
		lo := time.Duration(0)
		if i > 0 {
			lo = LagBuckets[i-1]
		}
		hi := LagBuckets[i]
		frac := (rank - float64(seen)) / float64(n)
		return lo + time.Duration(frac*float64(hi-lo)), true
	}
	return LagBuckets[len(LagBuckets)-1], true
}

// LagHistogram turns cumulative Prometheus bucket counts over LagBuckets
// (as read from the syncer's histogram) into the per-bucket counts that
// MetricMinute.Lag holds; total is the histogram's sample count (its
// overflow is total minus the last cumulative count).
func LagHistogram(cumulative []uint64, total uint64) ([]int64, error) {
	if len(cumulative) != len(LagBuckets) {
		return nil, fmt.Errorf("%w lag histogram: %d buckets, want %d", ErrInvalid, len(cumulative), len(LagBuckets))
	}
	out := make([]int64, len(LagBuckets)+1)
	var prev uint64
	for i, c := range cumulative {
		if c < prev {
			return nil, fmt.Errorf("%w lag histogram: bucket %d count %d below the previous %d", ErrInvalid, i, c, prev)
		}
		out[i] = int64(c - prev)
		prev = c
	}
	if total < prev {
		return nil, fmt.Errorf("%w lag histogram: total %d below the last bucket %d", ErrInvalid, total, prev)
	}
	out[len(LagBuckets)] = int64(total - prev)
	return out, nil
}
