package conformance

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// WriteTable writes the outcomes of one scenario as a Markdown table, one
// row per stack: what the callers got (requests, succeeded, failed, hung),
// what the server saw (arrivals, 429s, 5xx), the time taken against the
// oracle's ([Scenario.Least]), the share of arrivals answered 429, and,
// when the requests had deadlines, how late the latest answer came. A
// job's table adds the texts embedded.
func WriteTable(w io.Writer, outcomes []Outcome) error {
	job, deadlines := false, false
	for _, o := range outcomes {
		job = job || o.Texts > 0
		deadlines = deadlines || o.Deadlines
	}
	head := []string{"stack", "requests", "succeeded", "failed", "hung"}
	if job {
		head = append(head, "texts embedded")
	}
	head = append(head, "arrivals", "429s", "5xx", "wall", "oracle", "× oracle", "429 share")
	if deadlines {
		head = append(head, "max late")
	}
	var b strings.Builder
	row := func(cells []string) {
		b.WriteString("|")
		for _, c := range cells {
			b.WriteString(" ")
			b.WriteString(c)
			b.WriteString(" |")
		}
		b.WriteString("\n")
	}
	row(head)
	sep := make([]string, len(head))
	for i := range sep {
		sep[i] = "---:"
	}
	sep[0] = "---"
	row(sep)
	for _, o := range outcomes {
		cells := []string{
			o.Stack,
			strconv.Itoa(o.Requests),
			strconv.Itoa(o.Succeeded),
			strconv.Itoa(o.Failed),
			strconv.Itoa(o.Hung),
		}
		if job {
			cells = append(cells, fmt.Sprintf("%d / %d", o.Embedded, o.Texts))
		}
		wall := FormatDuration(o.Wall)
		if !o.Complete() {
			wall += " ✗"
		}
		ratio := "—"
		if o.Least > 0 {
			ratio = fmt.Sprintf("%.2f", o.Ratio())
		}
		cells = append(cells,
			strconv.Itoa(o.Arrivals),
			strconv.Itoa(o.TooMany),
			strconv.Itoa(o.ServerErrors),
			wall,
			FormatDuration(o.Least),
			ratio,
			FormatShare(o.TooManyShare()),
		)
		if deadlines {
			late := "—"
			if o.Deadlines {
				late = FormatDuration(o.MaxLate)
			}
			cells = append(cells, late)
		}
		row(cells)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// FormatShare formats a share as a percentage for a table: "0%", "0.03%",
// "1.4%", "12%": finer under 10%, where the goals are, and never "0%" for
// a share that is not 0.
func FormatShare(f float64) string {
	switch p := 100 * f; {
	case p <= 0:
		return "0%"
	case p < 1:
		return strconv.FormatFloat(max(math.Round(p*100)/100, 0.01), 'f', -1, 64) + "%"
	case p < 10:
		return strconv.FormatFloat(math.Round(p*10)/10, 'f', -1, 64) + "%"
	default:
		return strconv.FormatFloat(math.Round(p), 'f', -1, 64) + "%"
	}
}

// FormatDuration formats d for a table: tenths of a second under a minute
// ("2.3s"), whole seconds above ("5m12s").
func FormatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// Admissions returns the accepted arrivals of o as admissions of weight 1,
// to be binned beside [Scenario.Ideal]'s.
func (o Outcome) Admissions() []Admission {
	adm := make([]Admission, len(o.AcceptedAt))
	for i, at := range o.AcceptedAt {
		adm[i] = Admission{At: at, Weight: 1}
	}
	return adm
}

// PerSecond bins admissions into consecutive bins of width bin over
// [0, end) and returns each bin's rate in requests per second.
func PerSecond(adm []Admission, bin, end time.Duration) []float64 {
	if bin <= 0 || end <= 0 {
		return nil
	}
	n := int((end + bin - 1) / bin)
	rates := make([]float64, n)
	for _, a := range adm {
		if a.At < 0 || a.At >= end {
			continue
		}
		rates[a.At/bin] += a.Weight
	}
	for i := range rates {
		rates[i] /= bin.Seconds()
	}
	return rates
}
