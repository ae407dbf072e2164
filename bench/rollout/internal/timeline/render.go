package timeline

import (
	"bufio"
	"cmp"
	"fmt"
	"html"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// The drawing's geometry, in SVG user units (pixels at 100%).
const (
	width     = 1100
	left      = 190 // lane labels
	right     = 20
	plotW     = width - left - right
	laneH     = 70
	laneGap   = 28
	taskRowH  = 13
	stageRows = 3 // stage labels are staggered over this many rows so that they do not overlap
	stageRowH = 13
)

// groupColours are the target groups' colours, in the order the groups are first seen (none
// of them a task state's colour).
var groupColours = []string{"#1f77b4", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"}

// stateColour is the fill of a task's state; a state not listed is drawn grey.
func stateColour(state string) string {
	switch {
	case state == "STOPPED":
		return ""
	case strings.HasSuffix(state, "UNHEALTHY"):
		return "#ff7f0e"
	case strings.HasSuffix(state, "HEALTHY"):
		return "#2ca02c"
	case strings.HasPrefix(state, "RUNNING"):
		return "#9ecae1"
	case state == "DEACTIVATING" || state == "STOPPING" || state == "DEPROVISIONING":
		return "#fdd835"
	default: // PROVISIONING, PENDING, ACTIVATING
		return "#cccccc"
	}
}

// Render writes one HTML page with a timeline per scenario. The page is self-contained:
// inline SVG and CSS, no script, nothing fetched.
func Render(w io.Writer, title string, scenarios []Scenario) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>%s</title>
<style>
body { font: 13px/1.4 system-ui, sans-serif; margin: 24px; color: #222; background: #fff; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin: 28px 0 2px; }
p.result { margin: 0 0 6px; color: #444; }
svg.timeline { display: block; border: 1px solid #ddd; background: #fff; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
svg .grid { stroke: #eee; } svg .stage { stroke: #999; stroke-dasharray: 3 3; }
.legend span { display: inline-block; margin-right: 14px; }
.legend i { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -2px; }
</style></head><body>
<h1>%s</h1>
<p class="legend">task states:
<span><i style="background:#cccccc"></i>pending</span><span><i style="background:#9ecae1"></i>running</span>
<span><i style="background:#2ca02c"></i>healthy</span><span><i style="background:#ff7f0e"></i>unhealthy</span>
<span><i style="background:#fdd835"></i>deactivating / stopping</span>
lines: <span>weights and healthy targets per target group (solid: production, dashed: test)</span>
<span style="color:#555">requests/s</span> <span style="color:#d62728">failed/s</span></p>
`, html.EscapeString(title), html.EscapeString(title))
	for i := range scenarios {
		renderScenario(bw, &scenarios[i])
	}
	fmt.Fprintln(bw, "</body></html>")
	return bw.Flush()
}

// plot maps the scenario's times and values onto the drawing.
type plot struct {
	start time.Time
	dur   time.Duration
}

func (p plot) x(t time.Time) float64 {
	if p.dur <= 0 {
		return left
	}
	f := float64(t.Sub(p.start)) / float64(p.dur)
	return left + max(0, min(1, f))*plotW
}

func renderScenario(w io.Writer, s *Scenario) {
	p := plot{start: s.Start, dur: s.Duration()}
	groups := s.groups()
	colour := map[string]string{}
	for i, g := range groups {
		colour[g] = groupColours[i%len(groupColours)]
	}
	hasTest := slices.ContainsFunc(s.Samples, func(smp Sample) bool { return len(smp.Test) > 0 })

	lanes := 3 // production weight, healthy targets, requests
	if hasTest {
		lanes++
	}
	top := stageRows*stageRowH + 6
	tasksTop := top + lanes*(laneH+laneGap)
	height := tasksTop + len(s.Tasks)*taskRowH + 30

	fmt.Fprintf(w, "<section>\n<h2>%s</h2>\n<p class=\"result\">%s</p>\n", html.EscapeString(s.Name), html.EscapeString(s.Result))
	fmt.Fprint(w, `<p class="legend">`)
	for _, g := range groups {
		fmt.Fprintf(w, `<span><i style="background:%s"></i>%s</span>`, colour[g], html.EscapeString(g))
	}
	fmt.Fprintln(w, "</p>")
	fmt.Fprintf(w, `<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">`+"\n",
		width, height, width, height)
	axis(w, p, top, height-24)

	y := top
	weights := func(label string, pick func(Sample) map[string]int32, dash string) {
		laneFrame(w, y, label, 100)
		for _, g := range groups {
			steps(w, p, s.Samples, y, 100, colour[g], dash, func(smp Sample) (float64, bool) {
				v, ok := pick(smp)[g]
				return float64(v), ok
			})
		}
		y += laneH + laneGap
	}
	weights("production weight %", func(smp Sample) map[string]int32 { return smp.Production }, "")
	if hasTest {
		weights("test weight %", func(smp Sample) map[string]int32 { return smp.Test }, "5 3")
	}

	healthyMax := 1
	for _, smp := range s.Samples {
		for _, v := range smp.Healthy {
			healthyMax = max(healthyMax, v)
		}
	}
	laneFrame(w, y, "healthy targets", float64(healthyMax))
	for _, g := range groups {
		steps(w, p, s.Samples, y, float64(healthyMax), colour[g], "", func(smp Sample) (float64, bool) {
			v, ok := smp.Healthy[g]
			return float64(v), ok
		})
	}
	y += laneH + laneGap

	rates(w, p, s.Samples, y)
	y += laneH + laneGap

	for i, task := range s.Tasks {
		taskRow(w, p, task, tasksTop+i*taskRowH, s.Start.Add(p.dur))
	}
	stages(w, p, s.Stages, height-24)
	fmt.Fprintln(w, "</svg>\n</section>")
}

// axis draws the time grid with a label every few seconds.
func axis(w io.Writer, p plot, top, bottom int) {
	secs := p.dur.Seconds()
	step := 1.0
	for _, s := range []float64{1, 2, 5, 10, 15, 30, 60, 120, 300, 600} {
		step = s
		if secs/s <= 12 {
			break
		}
	}
	for t := 0.0; t <= secs; t += step {
		x := p.x(p.start.Add(time.Duration(t * float64(time.Second))))
		fmt.Fprintf(w, `<line class="grid" x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>`+"\n", x, top, x, bottom)
		fmt.Fprintf(w, `<text x="%.1f" y="%d" text-anchor="middle">%gs</text>`+"\n", x, bottom+14, t)
	}
}

// laneFrame draws a lane's label, baseline and top value.
func laneFrame(w io.Writer, y int, label string, top float64) {
	fmt.Fprintf(w, `<text x="8" y="%d">%s</text>`+"\n", y+laneH/2+4, html.EscapeString(label))
	fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="end">%g</text><text x="%d" y="%d" text-anchor="end">0</text>`+"\n",
		left-4, y+10, top, left-4, y+laneH)
	fmt.Fprintf(w, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#bbb"/>`+"\n", left, y+laneH, width-right, y+laneH)
}

// steps draws a value as a step line: it holds until the next sample that has it.
func steps(w io.Writer, p plot, samples []Sample, y int, top float64, colour, dash string, value func(Sample) (float64, bool)) {
	var pts []string
	prevY := -1.0
	for _, smp := range samples {
		v, ok := value(smp)
		if !ok {
			v = 0
		}
		x := p.x(smp.At)
		vy := float64(y+laneH) - v/top*float64(laneH-4)
		if prevY >= 0 && vy != prevY {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, prevY))
		}
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, vy))
		prevY = vy
	}
	if len(pts) == 0 {
		return
	}
	d := ""
	if dash != "" {
		d = ` stroke-dasharray="` + dash + `"`
	}
	fmt.Fprintf(w, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", colour, d, strings.Join(pts, " "))
}

// rates draws requests and failures per second between consecutive samples.
func rates(w io.Writer, p plot, samples []Sample, y int) {
	type rate struct {
		at        time.Time
		req, fail float64
	}
	var rs []rate
	top := 1.0
	// A rate over a very short interval (the last sample, taken at Stop) is noise: such an
	// interval is joined to the next, or dropped when it is the last.
	prev := 0
	for i := 1; i < len(samples); i++ {
		dt := samples[i].At.Sub(samples[prev].At).Seconds()
		if dt < 0.1 {
			continue
		}
		r := rate{samples[i].At,
			float64(samples[i].Requests-samples[prev].Requests) / dt,
			float64(samples[i].Failed-samples[prev].Failed) / dt}
		top = max(top, r.req)
		rs = append(rs, r)
		prev = i
	}
	laneFrame(w, y, "requests/s, failed/s", float64(int(top+0.5)))
	var req []string
	for _, r := range rs {
		req = append(req, fmt.Sprintf("%.1f,%.1f", p.x(r.at), float64(y+laneH)-r.req/top*float64(laneH-4)))
		if r.fail > 0 {
			h := max(2, r.fail/top*float64(laneH-4))
			fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="3" height="%.1f" fill="#d62728"><title>%.0f failed/s</title></rect>`+"\n",
				p.x(r.at)-1.5, float64(y+laneH)-h, h, r.fail)
		}
	}
	if len(req) > 0 {
		fmt.Fprintf(w, `<polyline fill="none" stroke="#555" stroke-width="1.5" points="%s"/>`+"\n", strings.Join(req, " "))
	}
}

// taskRow draws one task's states as coloured segments.
func taskRow(w io.Writer, p plot, t Task, y int, end time.Time) {
	label := t.ID
	if len(label) > 8 {
		label = label[:8]
	}
	fmt.Fprintf(w, `<text x="8" y="%d">%s %s</text>`+"\n", y+taskRowH-3, html.EscapeString(label), html.EscapeString(t.Revision))
	for i, st := range t.States {
		until := end
		if i+1 < len(t.States) {
			until = t.States[i+1].At
		}
		c := stateColour(st.Name)
		if c == "" {
			continue
		}
		x0, x1 := p.x(st.At), p.x(until)
		fmt.Fprintf(w, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>%s %s from %.1fs</title></rect>`+"\n",
			x0, y+1, max(1, x1-x0), taskRowH-2, c, html.EscapeString(t.ID), html.EscapeString(st.Name), st.At.Sub(p.start).Seconds())
	}
}

// stages draws a dashed line at each stage's start with its name at the top, the names
// staggered over a few rows.
func stages(w io.Writer, p plot, marks []Mark, bottom int) {
	for i, m := range marks {
		x := p.x(m.At)
		row := i % stageRows
		fmt.Fprintf(w, `<line class="stage" x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>`+"\n", x, row*stageRowH+4, x, bottom)
		// A name near the right edge ends at its line instead of starting there.
		if x > width-right-160 {
			fmt.Fprintf(w, `<text x="%.1f" y="%d" text-anchor="end">%s</text>`+"\n", x-2, row*stageRowH+12, html.EscapeString(m.Name))
		} else {
			fmt.Fprintf(w, `<text x="%.1f" y="%d">%s</text>`+"\n", x+2, row*stageRowH+12, html.EscapeString(m.Name))
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.SortedFunc(maps.Keys(m), cmp.Compare)
}
