package main

import (
	"fmt"
	"image/color"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/steadyapi/steady/conformance"
)

// plotSpan is how much of the runs a plot shows: until the last accepted
// request of any stack, but no more than three times the least possible
// time, so that one slow stack does not squeeze the others into a corner
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
// time, against what an ideal client gets from the server's limit, and
// saves it as a PNG at path.
func writePlot(path string, s conformance.Scenario, outs []conformance.Outcome) error {
	if len(outs) == 0 {
		return fmt.Errorf("compare: no outcome to plot for %s", s.Name)
	}
	span := plotSpan(s, outs)
	bin := scenarioBin(s, span)
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
	ideal, err := plotter.NewLine(series(s.Ideal(outs[0].Start, span)))
	if err != nil {
		return err
	}
	ideal.Color = color.Black
	ideal.Width = vg.Points(1.5)
	ideal.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(ideal)
	p.Legend.Add("limit (ideal client)", ideal)
	for i, o := range outs {
		l, err := plotter.NewLine(series(o.Admissions()))
		if err != nil {
			return err
		}
		l.Color = plotutil.Color(i)
		l.Width = vg.Points(1.2)
		p.Add(l)
		p.Legend.Add(o.Stack, l)
	}
	p.X.Min, p.X.Max = 0, span.Seconds()/unit.Seconds()
	p.Y.Min, p.Y.Max = 0, 1.45*top // headroom for the legend above the lines
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
