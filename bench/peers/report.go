package main

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/ferrysync/ferry/internal/svgchart"
)

const mib = 1 << 20

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// markdown is the table of results.
func markdown(rs []result, cfg config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d services × %d instances, %d readers (one request in flight each), hold %v, queries %v\n\n",
		cfg.services, cfg.replicas, cfg.readers, cfg.hold, cfg.queries)
	b.WriteString("| system | conns | register inst/s | queries/s | server CPU-ms / 1k queries | net of holding | keepalive CPU-s / min | RSS idle MiB | RSS conns MiB | RSS holding MiB | RSS peak MiB | KiB / conn |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rs {
		fmt.Fprintf(&b, "| %s | %d | %.0f | %.0f | %.0f | %.0f | %.2f | %.0f | %.0f | %.0f | %.0f | %.1f |\n",
			r.system, r.conns, r.registerPerSec, r.queriesPerSec, ms(r.cpuPer1kQuery), ms(r.cpuPer1kQueryNet), r.keepalivePerM.Seconds(),
			float64(r.rssIdle)/mib, float64(r.rssConns)/mib, float64(r.rssHolding)/mib, float64(r.rssPeak)/mib, r.perConn/1024)
	}
	return b.String()
}

// metric is one panel of the chart.
type metric struct {
	title string
	value func(result) float64
}

var chartMetrics = []metric{
	{"register instances/s", func(r result) float64 { return r.registerPerSec }},
	{"queries/s", func(r result) float64 { return r.queriesPerSec }},
	{"server CPU-ms per 1,000 queries, net of holding (lower is better)", func(r result) float64 { return ms(r.cpuPer1kQueryNet) }},
	{"keepalive CPU-s per minute (lower is better)", func(r result) float64 { return r.keepalivePerM.Seconds() }},
	{"RSS holding, MiB (lower is better)", func(r result) float64 { return float64(r.rssHolding) / mib }},
	{"KiB per connection (lower is better)", func(r result) float64 { return r.perConn / 1024 }},
}

var systemColours = map[string]string{"ferry": "#2b7bb9", "zookeeper": "#d9822b", "etcd": "#4a9c5d"}

// chart is an SVG of grouped bars (internal/svgchart): one panel per
// metric, one group per connection count, one bar per system.
func chart(rs []result) string {
	var systems []string
	var conns []int
	seenS, seenC := map[string]bool{}, map[int]bool{}
	for _, r := range rs {
		if !seenS[r.system] {
			seenS[r.system] = true
			systems = append(systems, r.system)
		}
		if !seenC[r.conns] {
			seenC[r.conns] = true
			conns = append(conns, r.conns)
		}
	}
	c := svgchart.Chart{Title: "ferry bench peers: Ferry registry, ZooKeeper, etcd (same machine, one server at a time)"}
	for _, s := range systems {
		c.Series = append(c.Series, svgchart.Series{Name: s, Colour: systemColours[s]})
	}
	for _, m := range chartMetrics {
		p := svgchart.Panel{Title: m.title}
		for _, n := range conns {
			p.Groups = append(p.Groups, fmt.Sprintf("%d conns", n))
			row := make([]float64, len(systems))
			for si, s := range systems {
				row[si] = math.NaN()
				for _, r := range rs {
					if r.system == s && r.conns == n {
						row[si] = m.value(r)
					}
				}
			}
			p.Bars = append(p.Bars, row)
		}
		c.Panels = append(c.Panels, p)
	}
	return svgchart.SVG(c)
}
