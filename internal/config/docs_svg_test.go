package config

import (
	"encoding/xml"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

type svgText struct {
	X, Y string
	Body string
}

// svgTexts returns every <text> element of an SVG file with its position.
func svgTexts(t *testing.T, file string) []svgText {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Texts []struct {
			X     string `xml:"x,attr"`
			Y     string `xml:"y,attr"`
			Inner string `xml:",innerxml"`
		} `xml:"text"`
		Title string `xml:"title"`
	}
	if err := xml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	out := []svgText{{Body: doc.Title}}
	for _, x := range doc.Texts {
		out = append(out, svgText{x.X, x.Y, x.Inner})
	}
	return out
}

// The shutdown timeline is drawn at svgScale pixels per second from x = svgOrigin.
const (
	svgOrigin = 60
	svgScale  = 20
)

var (
	svgSeconds = regexp.MustCompile(num + ` s\b`)
	svgTick    = regexp.MustCompile(`^` + num + ` s$`)
)

// TestShutdownTimelineSVG keeps docs/img/shutdown-timeline.svg drawn from budget.Defaults():
// every number of seconds in its text is a budget number some phrase of TestDocsBudgetNumbers
// checks, or a tick on the time axis that sits where its second is and marks SIGTERM, the end
// of the delay, the exit or SIGKILL.
func TestShutdownTimelineSVG(t *testing.T) {
	want := budgetValues()
	ticks := map[float64]string{
		0:                     "SIGTERM",
		want["ShutdownDelay"]: "end of the shutdown delay",
		want["ShutdownDelay"] + want["DrainTimeout"]: "exit",
		want["StopTimeout"]:                          "SIGKILL",
	}
	const file = "docs/img/shutdown-timeline.svg"
	for _, txt := range svgTexts(t, filepath.Join("../..", file)) {
		if m := svgTick.FindStringSubmatch(txt.Body); m != nil {
			v, _ := strconv.ParseFloat(m[1], 64)
			if _, ok := ticks[v]; !ok {
				t.Errorf("%s: tick %q marks no event of the default shutdown (%v)", file, txt.Body, ticks)
			}
			if x, _ := strconv.ParseFloat(txt.X, 64); x != svgOrigin+svgScale*v {
				t.Errorf("%s: tick %q at x=%s, want x=%g", file, txt.Body, txt.X, svgOrigin+svgScale*v)
			}
			delete(ticks, v)
			continue
		}
		// Every other number of seconds must be one a phrase reads; cover what they read and
		// see that nothing is left.
		rest := txt.Body
		for _, p := range budgetPhrases {
			rest = p.re.ReplaceAllString(rest, "")
		}
		if m := svgSeconds.FindString(rest); m != "" {
			t.Errorf("%s: %q: %q is a number no check reads; write it as the documents do (\"shutdown delay 12 s\", \"drain up to 15 s\", \"3 s margin\", \"stopTimeout 30 s\")", file, txt.Body, m)
		}
	}
	for v, what := range ticks {
		t.Errorf("%s: no tick at %g s (%s)", file, v, what)
	}
	// The phrases themselves compare the numbers with the code (TestDocsBudgetNumbers); here,
	// each of the four quantities the picture exists for must be among them.
	data, _ := os.ReadFile(filepath.Join("../..", file))
	for _, f := range []string{"ShutdownDelay", "DrainTimeout", "Margin", "StopTimeout"} {
		found := false
		for _, p := range budgetPhrases {
			if p.re.Match(data) && strings.Contains(strings.Join(p.fields, " "), f) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s does not show %s", file, f)
		}
	}
}

// TestTaskSVGPorts keeps the ports in docs/img/ecs-task.svg those of the code's defaults:
// the sidecar's traffic port and the probe server's.
func TestTaskSVGPorts(t *testing.T) {
	_, probePort, _ := net.SplitHostPort(DefaultAdminAddress)
	_, trafficPort, _ := net.SplitHostPort(Default().Listeners[0].Address)
	const file = "docs/img/ecs-task.svg"
	allowed := map[string]bool{probePort: true, trafficPort: true}
	seen := map[string]bool{}
	port := regexp.MustCompile(`:(\d{2,5})\b`)
	for _, txt := range svgTexts(t, filepath.Join("../..", file)) {
		for _, m := range port.FindAllStringSubmatch(txt.Body, -1) {
			if !allowed[m[1]] {
				t.Errorf("%s: %q: port %s is not a default (traffic %s, probe %s)", file, txt.Body, m[1], trafficPort, probePort)
			}
			seen[m[1]] = true
		}
		if strings.Contains(txt.Body, "/healthcheck") && !strings.Contains(txt.Body, "/healthcheck -probe container") {
			t.Errorf("%s: %q: the container health check is /healthcheck -probe container", file, txt.Body)
		}
	}
	for p := range allowed {
		if !seen[p] {
			t.Errorf("%s does not show port %s", file, p)
		}
	}
}
