package views

import (
	"fmt"
	"strconv"
	"strings"
)

// Colours of the health charts (Tailwind's emerald-600, rose-600,
// slate-400 and slate-200), given as SVG attributes: the CSP allows no
// inline style.
const (
	colorSucceeded = "#059669"
	colorFailed    = "#e11d48"
	colorOpen      = "#94a3b8"
	colorEmpty     = "#e2e8f0"
)

// chartPaths draws the bars of a health chart as four SVG paths, one per
// colour, each bar a vertical line as wide as the bar (stroke-width), so
// a page of 50 charts stays small: succeeded at the bottom, then failed,
// then pending, scaled to the tallest bar; an empty bucket is a 1-pixel
// baseline. Bars are barW wide with a 1-pixel gap.
func chartPaths(bars []HealthBar, barW, height int) (ok, fail, open, empty string) {
	var top int64 = 1
	for _, b := range bars {
		top = max(top, b.Succeeded+b.Failed+b.Open)
	}
	var po, pf, pp, pe strings.Builder
	for i, b := range bars {
		x := strconv.FormatFloat(float64(i*(barW+1))+float64(barW)/2, 'f', -1, 64)
		total := b.Succeeded + b.Failed + b.Open
		if total == 0 {
			fmt.Fprintf(&pe, "M%s %dv-1", x, height)
			continue
		}
		// Each part at least 1 px when it has any delivery, so one failure
		// among thousands still shows.
		px := func(n int64) int {
			if n == 0 {
				return 0
			}
			return max(1, int(float64(n)*float64(height)/float64(top)+0.5))
		}
		y := height
		for _, part := range []struct {
			n int64
			b *strings.Builder
		}{{b.Succeeded, &po}, {b.Failed, &pf}, {b.Open, &pp}} {
			h := min(px(part.n), y)
			if h == 0 {
				continue
			}
			fmt.Fprintf(part.b, "M%s %dv-%d", x, y, h)
			y -= h
		}
	}
	return po.String(), pf.String(), pp.String(), pe.String()
}

// chartWidth is the width of a chart of n bars.
func chartWidth(n, barW int) string { return strconv.Itoa(max(n*(barW+1)-1, 1)) }

// Summary is the chart's text alternative.
func (h HealthVM) Summary() string {
	if h.Total() == 0 {
		return "Last " + h.Window + ": no deliveries"
	}
	s := fmt.Sprintf("Last %s: %d deliveries, %d succeeded, %d failed, %d pending", h.Window, h.Total(), h.Succeeded, h.Failed, h.Open)
	if h.Rate != "" {
		s += "; " + h.Rate + " succeeded"
	}
	return s
}

// Short is the blade's one-line figure: "97% of 120", "3 pending", "no deliveries".
func (h HealthVM) Short() string {
	switch {
	case h.Total() == 0:
		return "no deliveries"
	case h.Rate == "":
		return fmt.Sprintf("%d pending", h.Open)
	}
	return fmt.Sprintf("%s of %d", h.Rate, h.Succeeded+h.Failed)
}
