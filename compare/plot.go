package main

import (
	"fmt"
	"image/color"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/steadyapi/steady/conformance"
)

// palette colours the stacks' lines, in stack order: Tableau's ten,
// distinct enough side by side.
var palette = []color.Color{
	color.RGBA{0x7f, 0x7f, 0x7f, 0xff}, // grey
	color.RGBA{0x2c, 0xa0, 0x2c, 0xff}, // green
	color.RGBA{0x1f, 0x77, 0xb4, 0xff}, // blue
	color.RGBA{0xff, 0x7f, 0x0e, 0xff}, // orange
	color.RGBA{0x94, 0x67, 0xbd, 0xff}, // purple
	color.RGBA{0xd6, 0x27, 0x28, 0xff}, // red
	color.RGBA{0xe3, 0x77, 0xc2, 0xff}, // pink
	color.RGBA{0x8c, 0x56, 0x4b, 0xff}, // brown
	color.RGBA{0x17, 0xbe, 0xcf, 0xff}, // cyan
	color.RGBA{0xbc, 0xbd, 0x22, 0xff}, // olive
}

// stackColor is the colour of a stack's line: its place in stacks(), so
// that a stack has one colour in every plot, or else its place in the plot.
func stackColor(name string, i int) color.Color {
	for j, st := range stacks() {
		if st.Name == name {
			i = j
			break
		}
	}
	return palette[i%len(palette)]
}

// plotSpan is how much of the runs a plot shows: until the last accepted
// request of any stack, but no more than three times the oracle's time, so that one slow stack does not squeeze the others into a corner
// (the table says how long it took).
func plotSpan(s conformance.Scenario, outs []conformance.Outcome) time.Duration {
	var end, least time.Duration
	for _, o := range outs {
		if n := len(o.AcceptedAt); n > 0 {
			end = max(end, o.AcceptedAt[n-1])
		}
		least = max(least, o.Least)
	}
	if least > 0 {
		end = min(end, 3*least)
		end = max(end, least)
	}
	return max(end+end/20, 10*time.Second)
}

// plotBin is the width of a plot's bins: a second, or wider for long runs,
// so a line has at most about 200 points.
func plotBin(span time.Duration) time.Duration {
	return max(time.Second, (span / 200).Round(time.Second))
}

// writePlot draws the accepted requests per second of each stack over
// time, against the oracle's, and saves it as a PNG at path.
func writePlot(path string, s conformance.Scenario, outs []conformance.Outcome) error {
	if len(outs) == 0 {
		return fmt.Errorf("compare: no outcome to plot for %s", s.Name)
	}
	if s.Workload.Timeout > 0 {
		return writeLatenessPlot(path, s, outs)
	}
	span := plotSpan(s, outs)
	idealAdm := s.Ideal(outs[0].Start, span)
	bin := scenarioBin(s, span)
	// At a low rate a short bin holds one request or two, and the lines
	// jitter between them: make a bin hold about ten requests of the limit.
	var total float64
	for _, a := range idealAdm {
		total += a.Weight
	}
	if total > 0 {
		bin = max(bin, min((time.Duration(10/total*float64(span))+time.Second/2).Round(time.Second), span/20))
	}
	unit, unitName := time.Second, "s"
	if span > 10*time.Minute {
		unit, unitName = time.Minute, "min"
	}
	p := plot.New()
	p.Title.Text = s.Title
	p.X.Label.Text = "time (" + unitName + ", virtual)"
	p.Y.Label.Text = fmt.Sprintf("accepted requests per second (%s bins)", conformance.FormatDuration(bin))
	p.Legend.Top = true
	p.Add(plotter.NewGrid())

	line := func(rates []float64) plotter.XYs {
		xy := make(plotter.XYs, len(rates))
		for i, r := range rates {
			xy[i].X = (time.Duration(i)*bin + bin/2).Seconds() / unit.Seconds()
			xy[i].Y = r
		}
		return xy
	}
	top := 0.0
	series := func(adm []conformance.Admission) plotter.XYs {
		rates := conformance.PerSecond(adm, bin, span)
		for _, r := range rates {
			top = max(top, r)
		}
		return line(rates)
	}
	ideal, err := plotter.NewLine(series(idealAdm))
	if err != nil {
		return err
	}
	ideal.Color = color.Black
	ideal.Width = vg.Points(1.5)
	ideal.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(ideal)
	p.Legend.Add("oracle", ideal)
	for i, o := range outs {
		l, err := plotter.NewLine(series(o.Admissions()))
		if err != nil {
			return err
		}
		l.Color = stackColor(o.Stack, i)
		l.Width = vg.Points(1.2)
		p.Add(l)
		p.Legend.Add(o.Stack, l)
	}
	p.X.Min, p.X.Max = 0, span.Seconds()/unit.Seconds()
	p.Y.Min, p.Y.Max = 0, 1.45*top // headroom for the legend above the lines
	p.Y.Tick.Marker = plainTicks{}
	return p.Save(10*vg.Inch, 4.5*vg.Inch, path)
}

// scenarioBin is plotBin, but at least a minute for a provider of
// one-minute windows: there a good client spends each window in its first
// second, and per-second bins would show spikes that hide every other line.
func scenarioBin(s conformance.Scenario, span time.Duration) time.Duration {
	for _, l := range s.Server.Limits {
		if l.Window == time.Minute {
			return max(plotBin(span), time.Minute)
		}
	}
	return plotBin(span)
}

// plainTicks are gonum's default ticks labelled without trailing zeros
// ("25", not "25.00").
type plainTicks struct{}

func (plainTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = strconv.FormatFloat(ts[i].Value, 'g', 4, 64)
		}
	}
	return ts
}

// writeLatenessPlot draws, for a scenario whose requests have deadlines,
// when each caller got its answer against its deadline: below the line it
// was on time, above it the caller waited past its deadline.
func writeLatenessPlot(path string, s conformance.Scenario, outs []conformance.Outcome) error {
	p := plot.New()
	p.Title.Text = s.Title
	p.X.Label.Text = "request start (s, virtual)"
	p.Y.Label.Text = "answer time − deadline (s)"
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	var end time.Duration
	lo, hi := 0.0, 0.0
	for i, o := range outs {
		xy := make(plotter.XYs, 0, len(o.Calls))
		for _, c := range o.Calls {
			if c.Deadline == 0 {
				continue
			}
			y := (c.End - c.Deadline).Seconds()
			xy = append(xy, plotter.XY{X: c.Start.Seconds(), Y: y})
			lo, hi = min(lo, y), max(hi, y)
			end = max(end, c.Start)
		}
		sc, err := plotter.NewScatter(xy)
		if err != nil {
			return err
		}
		sc.Color = stackColor(o.Stack, i)
		sc.Shape = plotutil.Shape(i)
		sc.Radius = vg.Points(3.5)
		p.Add(sc)
		p.Legend.Add(o.Stack, sc)
	}
	span := (end + time.Second).Seconds()
	deadline, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: span, Y: 0}})
	if err != nil {
		return err
	}
	deadline.Color = color.Black
	deadline.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(deadline)
	p.Legend.Add("deadline", deadline)
	p.X.Min, p.X.Max = -0.5, span
	p.Y.Min, p.Y.Max = lo-1, hi+0.6*(hi-lo)+1 // headroom for the legend
	p.Y.Tick.Marker = plainTicks{}
	return p.Save(10*vg.Inch, 4.5*vg.Inch, path)
}
