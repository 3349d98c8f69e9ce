package recordview

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/guptarohit/asciigraph"
)

// TrendPoint is one value of a result.
type TrendPoint struct {
	Date   time.Time `json:"date"`
	Value  float64   `json:"value"`
	Unit   string    `json:"unit,omitempty"`
	Low    *float64  `json:"low,omitempty"`
	High   *float64  `json:"high,omitempty"`
	Record string    `json:"record,omitempty"` // the record it came from
}

// Flag is "L" below the point's reference range, "H" above, else "".
func (p TrendPoint) Flag() string {
	switch {
	case p.Low != nil && p.Value < *p.Low:
		return "L"
	case p.High != nil && p.Value > *p.High:
		return "H"
	}
	return ""
}

// Trend is a result's values, oldest first.
type Trend struct {
	// Name is the result's display text, Code its "system|code".
	Name   string       `json:"name"`
	Code   string       `json:"code,omitempty"`
	Unit   string       `json:"unit,omitempty"`
	Points []TrendPoint `json:"points"`
	// Low and High are the reference range of the newest point that has
	// one.
	Low  *float64 `json:"low,omitempty"`
	High *float64 `json:"high,omitempty"`
	// OtherUnits counts the values left out because their unit differs
	// from Unit (the most common one).
	OtherUnits int `json:"other_units,omitempty"`
	// Records is the number of records read.
	Records int `json:"records"`
}

// PlotTrend draws the values oldest to newest, evenly spaced, with
// github.com/guptarohit/asciigraph, in at most width columns and height
// rows of plot, no colour. The reference range, when known, is drawn as
// two dotted lines.
func PlotTrend(t *Trend, width, height int) string {
	if len(t.Points) == 0 {
		return ""
	}
	values := make([]float64, len(t.Points))
	for i, p := range t.Points {
		values[i] = p.Value
	}
	if len(values) == 1 {
		values = append(values, values[0])
	}
	series := [][]float64{values}
	chars := []asciigraph.CharSet{asciigraph.DefaultCharSet}
	var legends []string
	constant := func(v float64) []float64 {
		out := make([]float64, len(values))
		for i := range out {
			out[i] = v
		}
		return out
	}
	if t.Low != nil || t.High != nil {
		legends = append(legends, "value")
	}
	if t.Low != nil {
		series = append(series, constant(*t.Low))
		chars = append(chars, asciigraph.CreateCharSet("┈"))
		legends = append(legends, "low "+formatNumber(*t.Low))
	}
	if t.High != nil {
		series = append(series, constant(*t.High))
		chars = append(chars, asciigraph.CreateCharSet("┈"))
		legends = append(legends, "high "+formatNumber(*t.High))
	}
	// The y axis labels take about 10 columns.
	plotWidth := max(width-12, 10)
	opts := []asciigraph.Option{asciigraph.Height(max(height, 3)), asciigraph.Width(plotWidth),
		asciigraph.Precision(2), asciigraph.SeriesChars(chars...)}
	if len(legends) > 0 {
		opts = append(opts, asciigraph.SeriesLegends(legends...))
	}
	return asciigraph.PlotMany(series, opts...)
}

// RenderTrend writes a trend as text: a heading, the plot, the points.
func RenderTrend(w io.Writer, t *Trend, width int) error {
	if width <= 0 {
		width = 80
	}
	var b strings.Builder
	head := t.Name
	if t.Code != "" {
		head += " (" + t.Code + ")"
	}
	if t.Unit != "" {
		head += ", " + t.Unit
	}
	writeWrapped(&b, head, "", "  ", width)
	n := len(t.Points)
	if n == 0 {
		b.WriteString("no values\n")
	} else {
		records := "1 record read"
		if t.Records != 1 {
			records = fmt.Sprintf("%d records read", t.Records)
		}
		writeWrapped(&b, fmt.Sprintf("%d values from %s to %s, oldest left; %s", n,
			t.Points[0].Date.Format(time.DateOnly), t.Points[n-1].Date.Format(time.DateOnly), records), "", "  ", width)
		if t.OtherUnits > 0 {
			writeWrapped(&b, fmt.Sprintf("(%d values in other units left out)", t.OtherUnits), "", "  ", width)
		}
		b.WriteByte('\n')
		b.WriteString(PlotTrend(t, width, 10))
		b.WriteString("\n\n")
		for i := n - 1; i >= 0; i-- {
			p := t.Points[i]
			line := fmt.Sprintf("  %s  %10s %s", p.Date.Format(time.DateOnly), formatNumber(p.Value), p.Unit)
			if f := p.Flag(); f != "" {
				line += "  " + f
			}
			if p.Record != "" {
				line += "  record " + shortID(p.Record)
			}
			b.WriteString(line + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
