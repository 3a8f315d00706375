package svgchart

import (
	"encoding/xml"
	"io"
	"math"
	"strings"
	"testing"
)

// wellFormed parses svg as XML and counts its elements by name.
func wellFormed(t *testing.T, svg string) map[string]int {
	t.Helper()
	n := map[string]int{}
	d := xml.NewDecoder(strings.NewReader(svg))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return n
		}
		if err != nil {
			t.Fatalf("not XML: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok {
			n[se.Name.Local]++
		}
	}
}

func TestBars(t *testing.T) {
	svg := SVG(Chart{
		Title:  "a <b> & c",
		Series: []Series{{Name: "ferry", Colour: "#2b7bb9"}, {Name: "etcd"}},
		Panels: []Panel{{Title: "q/s", Groups: []string{"300 conns", "3000 conns"}, Bars: [][]float64{{10, 20}, {30, math.NaN()}}}},
	})
	n := wellFormed(t, svg)
	// background + 2 legend boxes + 3 bars (the NaN one is left out)
	if n["rect"] != 1+2+3 {
		t.Errorf("%d rects, want 6:\n%s", n["rect"], svg)
	}
	if !strings.Contains(svg, "a &lt;b&gt; &amp; c") || strings.Contains(svg, "<script") {
		t.Errorf("title not escaped or a script:\n%s", svg)
	}
	if !strings.Contains(svg, `<title>ferry, 3000 conns: 30</title>`) || !strings.Contains(svg, `fill="#777"`) {
		t.Errorf("bar titles or default colour missing:\n%s", svg)
	}
}

func TestLines(t *testing.T) {
	svg := SVG(Chart{
		Title:  "soak",
		Series: []Series{{Name: "worker", Colour: "#2b7bb9"}, {Name: "registry", Colour: "#d9822b"}},
		Panels: []Panel{
			{Title: "RSS MiB", XTitle: "min", Lines: [][]Point{{{0, 100}, {0.5, 110}, {1, 112}}, {{0, 60}, {1, 61}}}},
			{Title: "empty", XTitle: "min", Lines: [][]Point{nil, nil}},
		},
	})
	n := wellFormed(t, svg)
	if n["polyline"] != 2 || n["circle"] != 5 {
		t.Errorf("%d polylines, %d circles; want 2, 5:\n%s", n["polyline"], n["circle"], svg)
	}
	if !strings.Contains(svg, `<title>worker, 0.50 min: 110</title>`) {
		t.Errorf("point titles missing:\n%s", svg)
	}
	for _, bad := range []string{"NaN", "Inf"} {
		if strings.Contains(svg, bad) {
			t.Errorf("%s in the SVG:\n%s", bad, svg)
		}
	}
}

func TestNum(t *testing.T) {
	for v, want := range map[float64]string{0: "0.00", 3.14159: "3.14", 42.4: "42", 1234: "1.2k", 123456: "123k"} {
		if got := Num(v); got != want {
			t.Errorf("Num(%v) = %q, want %q", v, got, want)
		}
	}
}
