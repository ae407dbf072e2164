package timeline

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// scenario builds a blue/green deployment's record: blue serves, green scales up, the
// production weight moves, blue's tasks drain and stop; failures, when wanted, during the
// shift.
func scenario(name string, failures bool) Scenario {
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	s := Scenario{Name: name, Result: "exit 0 (want 0)", Start: t0}
	var req, failed int64
	for i := 0; i <= 120; i++ {
		sec := float64(i) / 2
		prod := map[string]int32{"blue": 100, "green": 0}
		test := map[string]int32{"blue": 100, "green": 0}
		healthy := map[string]int{"blue": 2, "green": 0}
		if sec >= 15 {
			healthy["green"] = 2
			test = map[string]int32{"blue": 0, "green": 100}
		}
		if sec >= 25 {
			prod = map[string]int32{"blue": 0, "green": 100}
		}
		if sec >= 45 {
			healthy["blue"] = 0
		}
		req += 100
		if failures && sec >= 25 && sec < 27 {
			failed += 7
		}
		s.Samples = append(s.Samples, Sample{At: at(sec), Production: prod, Test: test, Healthy: healthy, Requests: req, Failed: failed})
	}
	for i, st := range []string{"RECONCILE_SERVICE", "PRE_SCALE_UP", "SCALE_UP", "POST_SCALE_UP", "TEST_TRAFFIC_SHIFT",
		"POST_TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT", "BAKE_TIME", "CLEAN_UP"} {
		s.Stages = append(s.Stages, Mark{Name: st, At: at(float64(i)*5 + 1)})
	}
	for i := range 2 {
		s.Tasks = append(s.Tasks, Task{ID: fmt.Sprintf("0a1b2c3d%d", i), Revision: "app:1", States: []Mark{
			{"RUNNING HEALTHY", at(0)}, {"DEACTIVATING", at(45)}, {"STOPPED", at(52)}}})
		s.Tasks = append(s.Tasks, Task{ID: fmt.Sprintf("9f8e7d6c%d", i), Revision: "app:2", States: []Mark{
			{"PROVISIONING", at(5)}, {"RUNNING", at(8)}, {"RUNNING HEALTHY", at(15)}}})
	}
	return s
}

func render(t *testing.T, scenarios ...Scenario) string {
	t.Helper()
	var b bytes.Buffer
	if err := Render(&b, "ECS rehearsal", scenarios); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// The page draws each scenario's parts: a timeline per scenario, every stage named, every
// task's row, failures as red bars only when there were failures, and nothing fetched.
func TestRenderDrawsEveryPart(t *testing.T) {
	page := render(t, scenario("good revision", false), scenario("alarm during bake time", true))
	if n := strings.Count(page, `<svg class="timeline"`); n != 2 {
		t.Errorf("%d timelines, want 2", n)
	}
	for _, want := range []string{"good revision", "alarm during bake time", "PRODUCTION_TRAFFIC_SHIFT", "CLEAN_UP",
		"production weight %", "test weight %", "healthy targets", "requests/s, failed/s", "0a1b2c3d app:1", "9f8e7d6c app:2"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	good, bad := strings.Index(page, "good revision"), strings.Index(page, "alarm during bake time")
	if strings.Contains(page[good:bad], "failed/s</title>") {
		t.Error("the scenario without failures has failure bars")
	}
	if !strings.Contains(page[bad:], "failed/s</title>") {
		t.Error("the scenario with failures has no failure bar")
	}
	if regexp.MustCompile(`(?i)(src|href)\s*=\s*"(https?:)?//`).MatchString(page) || strings.Contains(page, "<script") {
		t.Error("the page must be self-contained: no script, nothing fetched")
	}
}

// A scenario with nothing recorded, or one sample, still renders (an aborted scenario).
func TestRenderEmpty(t *testing.T) {
	s := Scenario{Name: "aborted", Start: time.Now()}
	page := render(t, s)
	if !strings.Contains(page, `<svg class="timeline"`) {
		t.Fatal("no timeline for an empty scenario")
	}
	s.Samples = []Sample{{At: s.Start}}
	render(t, s)
}

// Headless Chromium renders the page: the screenshot is not blank (it has the colours of
// the target groups, the task states and the failures), and the DOM Chromium parsed has one
// timeline per scenario. Chromium is the Debian package `chromium`; make test-rollout
// installs it and sets GANGWAY_CHROMIUM_REQUIRE=1, so that there a missing browser fails.
func TestRenderInChromium(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("GANGWAY_CHROMIUM_REQUIRE") != "" {
			t.Fatal("chromium is not installed and GANGWAY_CHROMIUM_REQUIRE is set")
		}
		t.Skip("chromium is not installed (Debian package chromium): make test-rollout installs it and runs this test")
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	scenarios := []Scenario{scenario("good revision", false), scenario("never-ready revision", true), scenario("repave", false)}
	if err := os.WriteFile(page, []byte(render(t, scenarios...)), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) []byte {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
			"--user-data-dir=" + filepath.Join(dir, "profile"), "--no-first-run", "--hide-scrollbars"}
		cmd := exec.CommandContext(ctx, browser, append(base, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chromium %v: %v\n%s", args, err, stderr.Bytes())
		}
		return out
	}
	dom := run("--dump-dom", "file://"+page)
	if n := bytes.Count(dom, []byte(`<svg class="timeline"`)); n != len(scenarios) {
		t.Errorf("Chromium's DOM has %d timelines, want %d", n, len(scenarios))
	}
	shot := filepath.Join(dir, "shot.png")
	run("--screenshot="+shot, "--window-size=1200,1600", "file://"+page)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	ink, colours := inkAndColours(img)
	if ink < 0.02 {
		t.Errorf("screenshot is %.3f%% ink: blank", ink*100)
	}
	for _, c := range []string{"#1f77b4", "#9467bd", "#2ca02c", "#d62728", "#fdd835"} {
		if !colours[c] {
			t.Errorf("screenshot lacks %s (the groups, healthy tasks, failures, draining tasks)", c)
		}
	}
}

// inkAndColours returns the share of pixels that are not white and the set of colours
// seen, as #rrggbb.
func inkAndColours(img image.Image) (float64, map[string]bool) {
	b := img.Bounds()
	var ink, all int
	colours := map[string]bool{}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			all++
			if r>>8 < 250 || g>>8 < 250 || bl>>8 < 250 {
				ink++
			}
			colours[fmt.Sprintf("#%02x%02x%02x", r>>8, g>>8, bl>>8)] = true
		}
	}
	return float64(ink) / float64(all), colours
}
