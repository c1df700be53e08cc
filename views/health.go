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

// chartPaths draws the bars of a health chart as four SVG paths (one per
// colour, not one element per bar, so a page of 50 charts stays small):
// succeeded at the bottom, then failed, then open, scaled to the tallest
// bar; an empty bucket is a 1-pixel baseline. Bars are barW wide with a
// 1-pixel gap.
func chartPaths(bars []HealthBar, barW, height int) (ok, fail, open, empty string) {
	var top int64 = 1
	for _, b := range bars {
		top = max(top, b.Succeeded+b.Failed+b.Open)
	}
	var po, pf, pp, pe strings.Builder
	for i, b := range bars {
		x := i * (barW + 1)
		total := b.Succeeded + b.Failed + b.Open
		if total == 0 {
			fmt.Fprintf(&pe, "M%d %dh%dv1h-%dz", x, height-1, barW, barW)
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
			h := px(part.n)
			if h == 0 {
				continue
			}
			y -= h
			fmt.Fprintf(part.b, "M%d %dh%dv%dh-%dz", x, y, barW, h, barW)
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
