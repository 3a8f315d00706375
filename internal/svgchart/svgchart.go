// Package svgchart draws Ferry's benchmark charts as plain SVG (no script,
// no external fonts): a title, a legend of series and a grid of panels,
// each either grouped bars (bench/peers: one group per connection count,
// one bar per system) or lines over time (ferry bench soak: RSS and CPU of
// the worker and the registry). The one chart drawer of the repository.
package svgchart

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// Chart is one SVG.
type Chart struct {
	Title  string
	Series []Series // the legend, in order; panels index their values by it
	Panels []Panel
	Cols   int // panels per row (0: 2)
}

// Series is one system or process drawn in every panel.
type Series struct {
	Name   string
	Colour string // any SVG colour ("#2b7bb9"); "" is grey
}

// Panel is one plot. It has bars when Groups is set, else lines.
type Panel struct {
	Title string
	// Groups label the bar groups; Bars[g][s] is series s's bar in group
	// g (NaN: no bar).
	Groups []string
	Bars   [][]float64
	// Lines[s] are series s's points, X ascending; XTitle names X's unit.
	Lines  [][]Point
	XTitle string
}

// Point is one sample of a line.
type Point struct{ X, Y float64 }

const (
	panelW, panelH = 420, 230
	top            = 50
	barW           = 28
	plotH          = 150
)

// SVG renders c.
func SVG(c Chart) string {
	cols := c.Cols
	if cols <= 0 {
		cols = 2
	}
	rows := (len(c.Panels) + cols - 1) / cols
	w, h := cols*panelW+20, top+rows*panelH+10
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="10" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", html.EscapeString(c.Title))
	for i, s := range c.Series {
		x := 10 + i*120
		fmt.Fprintf(&b, `<rect x="%d" y="30" width="12" height="12" fill="%s"/><text x="%d" y="40">%s</text>`+"\n", x, colour(s), x+16, html.EscapeString(s.Name))
	}
	for pi, p := range c.Panels {
		ox, oy := 10+(pi%cols)*panelW, top+(pi/cols)*panelH
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", ox, oy+14, html.EscapeString(p.Title))
		if len(p.Groups) > 0 {
			bars(&b, c.Series, p, ox, oy)
		} else {
			lines(&b, c.Series, p, ox, oy)
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func bars(b *strings.Builder, series []Series, p Panel, ox, oy int) {
	top := 0.0
	for _, g := range p.Bars {
		for _, v := range g {
			if !math.IsNaN(v) {
				top = math.Max(top, v)
			}
		}
	}
	if top == 0 {
		top = 1
	}
	base := oy + 30 + plotH
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#888"/>`+"\n", ox, base, ox+panelW-30, base)
	groupW := len(series)*barW + 30
	for gi, label := range p.Groups {
		gx := ox + 10 + gi*groupW
		for si, s := range series {
			if gi >= len(p.Bars) || si >= len(p.Bars[gi]) || math.IsNaN(p.Bars[gi][si]) {
				continue
			}
			v := p.Bars[gi][si]
			bh := int(math.Round(v / top * plotH))
			x := gx + si*barW
			fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s, %s: %s</title></rect>`+"\n",
				x, base-bh, barW-4, bh, colour(s), html.EscapeString(s.Name), html.EscapeString(label), Num(v))
			fmt.Fprintf(b, `<text x="%d" y="%d" font-size="9" text-anchor="middle">%s</text>`+"\n", x+(barW-4)/2, base-bh-3, Num(v))
		}
		fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", gx+len(series)*barW/2, base+14, html.EscapeString(label))
	}
}

func lines(b *strings.Builder, series []Series, p Panel, ox, oy int) {
	const left, plotW = 40, panelW - 70 // room for the Y labels
	x0, x1, ytop := math.Inf(1), math.Inf(-1), 0.0
	for _, l := range p.Lines {
		for _, pt := range l {
			x0, x1, ytop = math.Min(x0, pt.X), math.Max(x1, pt.X), math.Max(ytop, pt.Y)
		}
	}
	if math.IsInf(x0, 0) {
		x0, x1 = 0, 1
	}
	if x1 == x0 {
		x1 = x0 + 1
	}
	if ytop == 0 {
		ytop = 1
	}
	ytop *= 1.1 // headroom above the highest point
	base, px := oy+30+plotH, ox+left
	sx := func(x float64) float64 { return float64(px) + (x-x0)/(x1-x0)*plotW }
	sy := func(y float64) float64 { return float64(base) - y/ytop*plotH }
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#888"/>`+"\n", px, base, px+plotW, base)
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#888"/>`+"\n", px, base, px, base-plotH)
	for _, f := range []float64{0, 0.5, 1} {
		y := sy(f * ytop)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" font-size="9" text-anchor="end">%s</text>`+"\n", px-4, y+3, Num(f*ytop))
		if f > 0 {
			fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", px, y, px+plotW, y)
		}
	}
	for _, f := range []float64{0, 0.25, 0.5, 0.75, 1} {
		x := x0 + f*(x1-x0)
		fmt.Fprintf(b, `<text x="%.1f" y="%d" font-size="9" text-anchor="middle">%s</text>`+"\n", sx(x), base+12, Num(x))
	}
	if p.XTitle != "" {
		fmt.Fprintf(b, `<text x="%d" y="%d" font-size="9" text-anchor="end">%s</text>`+"\n", px+plotW, base+24, html.EscapeString(p.XTitle))
	}
	for si, s := range series {
		if si >= len(p.Lines) || len(p.Lines[si]) == 0 {
			continue
		}
		var pts []string
		for _, pt := range p.Lines[si] {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", sx(pt.X), sy(pt.Y)))
		}
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", colour(s), strings.Join(pts, " "))
		for _, pt := range p.Lines[si] {
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"><title>%s, %s %s: %s</title></circle>`+"\n",
				sx(pt.X), sy(pt.Y), colour(s), html.EscapeString(s.Name), Num(pt.X), html.EscapeString(p.XTitle), Num(pt.Y))
		}
	}
}

func colour(s Series) string {
	if s.Colour != "" {
		return s.Colour
	}
	return "#777"
}

// Num prints v short: 3 significant digits, k for thousands.
func Num(v float64) string {
	switch {
	case v >= 10000:
		return fmt.Sprintf("%.0fk", v/1000)
	case v >= 1000:
		return fmt.Sprintf("%.1fk", v/1000)
	case v >= 10:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}
