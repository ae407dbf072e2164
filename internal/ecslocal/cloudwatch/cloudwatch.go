// Package cloudwatch is ecslocal's Amazon CloudWatch: metric alarms evaluated on the load
// balancer's own counters, which it publishes as the AWS/ApplicationELB metrics, so that a
// deployment that names an alarm is rolled back when its target group's 5xx count crosses
// the threshold, as on AWS.
//
// Alarms follow "Using Amazon CloudWatch alarms"
// (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html):
// Period, EvaluationPeriods N, DatapointsToAlarm M ("M out of N"), Statistic or
// ExtendedStatistic, ComparisonOperator, Threshold and TreatMissingData; periods of 60 s or
// more are evaluated every minute, shorter ones every 10 s. Every duration is multiplied by
// Options.TimeScale, so that a scenario of alarm periods takes seconds.
package cloudwatch

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// Alarm states.
const (
	StateOK           = "OK"
	StateAlarm        = "ALARM"
	StateInsufficient = "INSUFFICIENT_DATA"
)

// Options configure a Service.
type Options struct {
	Region, Account string
	// TimeScale multiplies every period and evaluation interval (0 < TimeScale <= 1; 0 means
	// 1): at 0.01 a 60 s period lasts 0.6 s.
	TimeScale float64
	ELB       ELB      // the target groups and their health; nil: no metrics
	Counters  Counters // the load balancer's request counters; nil: no counted metrics
	Now       func() time.Time
	Log       *slog.Logger
}

// Dimension is a metric dimension.
type Dimension struct {
	Name  string
	Value string
}

// MetricDataQuery is one member of an alarm's Metrics (metric math), recorded only.
type MetricDataQuery struct {
	Id         string
	Expression string          `json:",omitempty"`
	MetricStat json.RawMessage `json:",omitempty"`
	Label      string          `json:",omitempty"`
	ReturnData *bool           `json:",omitempty"`
	Period     *int32          `json:",omitempty"`
	AccountId  string          `json:",omitempty"`
}

// Alarm is a metric alarm: the PutMetricAlarm input and its state (the MetricAlarm shape of
// the CloudWatch API Reference).
type Alarm struct {
	AlarmName                          string
	AlarmArn                           string
	AlarmDescription                   string `json:",omitempty"`
	ActionsEnabled                     bool
	OKActions                          []string `json:",omitempty"`
	AlarmActions                       []string `json:",omitempty"`
	InsufficientDataActions            []string `json:",omitempty"`
	MetricName                         string   `json:",omitempty"`
	Namespace                          string   `json:",omitempty"`
	Statistic                          string   `json:",omitempty"`
	ExtendedStatistic                  string   `json:",omitempty"`
	Dimensions                         []Dimension
	Period                             int32  `json:",omitempty"`
	Unit                               string `json:",omitempty"`
	EvaluationPeriods                  int32
	DatapointsToAlarm                  int32 `json:",omitempty"`
	Threshold                          float64
	ComparisonOperator                 string
	TreatMissingData                   string            `json:",omitempty"`
	Metrics                            []MetricDataQuery `json:",omitempty"`
	StateValue                         string
	StateReason                        string
	StateReasonData                    string `json:",omitempty"`
	StateUpdatedTimestamp              Epoch
	StateTransitionedTimestamp         Epoch
	AlarmConfigurationUpdatedTimestamp Epoch
}

// HistoryItem is one state change of an alarm (the AlarmHistoryItem shape).
type HistoryItem struct {
	AlarmName       string
	AlarmType       string
	Timestamp       Epoch
	HistoryItemType string
	HistorySummary  string
	HistoryData     string
}

// Epoch is a timestamp as awsJson writes it: seconds since the epoch.
type Epoch struct{ time.Time }

func (e Epoch) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprintf("%.3f", float64(e.UnixMilli())/1000)), nil
}

func (e *Epoch) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err == nil {
		e.Time = time.UnixMilli(int64(math.Round(f * 1000))).UTC()
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("timestamp %s: want epoch seconds or an ISO 8601 string", b)
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return fmt.Errorf("timestamp %q: %v", s, err)
	}
	e.Time = t
	return nil
}

// Service holds the alarms, samples the load balancer and evaluates the alarms.
type Service struct {
	o   Options
	log *slog.Logger

	mu      sync.Mutex
	alarms  map[string]*alarmState
	samples []sample // oldest first
	history []HistoryItem
}

type alarmState struct {
	Alarm
	lastEval time.Time
}

// New returns a Service with no alarms.
func New(o Options) *Service {
	if o.TimeScale <= 0 {
		o.TimeScale = 1
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{o: o, log: o.Log, alarms: map[string]*alarmState{}}
}

func (s *Service) scale(seconds float64) time.Duration {
	return time.Duration(seconds * s.o.TimeScale * float64(time.Second))
}

// SampleInterval is how often Run samples the load balancer: a tenth of the shortest
// evaluation interval (10 s), scaled, and at least 10 ms.
func (s *Service) SampleInterval() time.Duration {
	return max(s.scale(1), 10*time.Millisecond)
}

// Run samples and evaluates until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.SampleInterval())
	defer t.Stop()
	for {
		s.Tick(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Tick takes one sample of the load balancer and evaluates every alarm that is due.
func (s *Service) Tick(ctx context.Context) {
	now := s.o.Now()
	smp := takeSample(ctx, now, s.o.ELB, s.o.Counters)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples = append(s.samples, smp)
	// Keep what the longest alarm window needs (and a day's worth at most, the limit of
	// Period × EvaluationPeriods), at least 10 scaled minutes.
	keep := s.scale(600)
	for _, a := range s.alarms {
		keep = max(keep, s.scale(float64(a.Period)*float64(a.EvaluationPeriods+3)))
	}
	i := 0
	for i < len(s.samples)-1 && now.Sub(s.samples[i+1].at) > keep {
		i++
	}
	s.samples = slices.Delete(s.samples, 0, i)
	for _, a := range s.alarms {
		s.evaluateLocked(a, now)
	}
}

// evaluationInterval is how often an alarm is evaluated: every minute for periods of 60 s
// or more, every 10 s for 10 s and 30 s periods.
func (s *Service) evaluationInterval(a *alarmState) time.Duration {
	if a.Period >= 60 {
		return s.scale(60)
	}
	return s.scale(10)
}

// AlarmState returns an alarm's state (OK, ALARM or INSUFFICIENT_DATA); ok is false when no
// alarm has that name.
func (s *Service) AlarmState(name string) (state string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.alarms[name]
	if !ok {
		return "", false
	}
	return a.StateValue, true
}

// verdict of one data point.
const (
	missing = iota
	notBreaching
	breaching
)

// evaluateLocked evaluates a when it is due: the newest N real data points when there are at
// least N in the evaluation range (N+2 periods), otherwise as many missing ones as needed
// treated as TreatMissingData says ("Configuring how CloudWatch alarms treat missing
// data").
func (s *Service) evaluateLocked(a *alarmState, now time.Time) {
	if !a.lastEval.IsZero() && now.Sub(a.lastEval) < s.evaluationInterval(a) {
		return
	}
	a.lastEval = now
	if len(a.Metrics) > 0 {
		s.setStateLocked(a, now, StateInsufficient, "ecslocal does not evaluate metric math alarms (Metrics)", "")
		return
	}
	n, m := int(a.EvaluationPeriods), int(a.DatapointsToAlarm)
	if m == 0 {
		m = n
	}
	period := s.scale(float64(a.Period))
	rangeLen := n + 2
	// Oldest first; slot i ends at now - (rangeLen-1-i) periods.
	verdicts := make([]int, rangeLen)
	values := make([]float64, rangeLen)
	starts := make([]time.Time, rangeLen)
	stat := a.Statistic
	if stat == "" {
		stat = a.ExtendedStatistic
	}
	for i := range rangeLen {
		end := now.Add(-time.Duration(rangeLen-1-i) * period)
		start := end.Add(-period)
		starts[i] = start
		if a.Namespace != namespaceALB {
			continue
		}
		d, ok := point(s.samples, a.MetricName, a.Dimensions, start, end)
		if !ok {
			continue
		}
		values[i] = d.stat(stat)
		if compare(a.ComparisonOperator, values[i], a.Threshold) {
			verdicts[i] = breaching
		} else {
			verdicts[i] = notBreaching
		}
	}

	state, used := decide(verdicts, n, m, a.TreatMissingData, a.StateValue)
	reason, data := s.reason(a, state, verdicts, values, starts, used, now)
	s.setStateLocked(a, now, state, reason, data)
}

// decide is an alarm's state from the verdicts of its evaluation range (oldest first, N+2
// periods): the newest N real data points when there are at least N, otherwise the real ones
// and as many missing ones as needed, treated as treat says ("Configuring how CloudWatch
// alarms treat missing data"), or the premature-ALARM rule. used are the slots the decision
// rests on.
func decide(verdicts []int, n, m int, treat, current string) (state string, used []int) {
	var real []int
	for i, v := range verdicts {
		if v != missing {
			real = append(real, i)
		}
	}
	window := verdicts[len(verdicts)-n:]
	state = current
	switch {
	case len(real) >= n:
		used = real[len(real)-n:]
		b := 0
		for _, i := range used {
			if verdicts[i] == breaching {
				b++
			}
		}
		state = StateOK
		if b >= m {
			state = StateAlarm
		}
	case prematureAlarm(window, m):
		state = StateAlarm
		used = real
	case len(real) == 0 && (treat == "" || treat == "missing"):
		state = StateInsufficient
	case len(real) == 0 && treat == "ignore":
		// keep the state
	default:
		used = real
		b, good := 0, 0
		for _, i := range real {
			if verdicts[i] == breaching {
				b++
			} else {
				good++
			}
		}
		fill := n - len(real)
		switch treat {
		case "breaching":
			b += fill
		case "notBreaching":
			good += fill
		}
		switch {
		case b >= m:
			state = StateAlarm
		case good > n-m || treat == "notBreaching" || treat == "breaching":
			state = StateOK
		}
		// missing or ignore with too few real points to decide: keep the state
	}
	return state, used
}

// prematureAlarm is the rule by which an alarm goes to ALARM before M points breach: the
// oldest breaching point of the N newest periods is at least M periods old and every newer
// one is breaching or missing.
func prematureAlarm(window []int, m int) bool {
	first := slices.Index(window, breaching)
	if first < 0 || len(window)-first < m {
		return false
	}
	for _, v := range window[first:] {
		if v == notBreaching {
			return false
		}
	}
	return true
}

func compare(op string, v, threshold float64) bool {
	switch op {
	case "GreaterThanOrEqualToThreshold":
		return v >= threshold
	case "GreaterThanThreshold":
		return v > threshold
	case "LessThanThreshold":
		return v < threshold
	case "LessThanOrEqualToThreshold":
		return v <= threshold
	}
	return false
}

var opWords = map[string]string{
	"GreaterThanOrEqualToThreshold": "greater than or equal to",
	"GreaterThanThreshold":          "greater than",
	"LessThanThreshold":             "less than",
	"LessThanOrEqualToThreshold":    "less than or equal to",
}

// reason words a state change as CloudWatch does ("Threshold Crossed: 1 datapoint [5.0
// (05/12/26 15:04:00)] was greater than or equal to the threshold (1.0).") with the
// StateReasonData JSON.
func (s *Service) reason(a *alarmState, state string, verdicts []int, values []float64, starts []time.Time, used []int, now time.Time) (string, string) {
	var pts []string
	var recent []float64
	var recentStarts []string
	for i := len(used) - 1; i >= 0; i-- {
		j := used[i]
		if verdicts[j] == missing {
			continue
		}
		recent = append(recent, values[j])
		recentStarts = append(recentStarts, starts[j].UTC().Format("2006-01-02T15:04:05.000+0000"))
		if state == StateAlarm && verdicts[j] != breaching || state == StateOK && verdicts[j] == breaching {
			continue
		}
		pts = append(pts, fmt.Sprintf("%s (%s)", fmtValue(values[j]), starts[j].UTC().Format("02/01/06 15:04:05")))
	}
	var reason string
	switch {
	case state == StateInsufficient:
		reason = fmt.Sprintf("Insufficient Data: %d datapoints were unknown.", len(verdicts)-2)
	case len(pts) == 0:
		reason = fmt.Sprintf("Threshold Crossed: no datapoints were received for %d periods and %d missing datapoints were treated as [%s].",
			a.EvaluationPeriods, a.EvaluationPeriods, treatWord(a.TreatMissingData))
	default:
		noun, verb := "datapoint", "was"
		if len(pts) > 1 {
			noun, verb = "datapoints", "were"
		}
		if state == StateOK {
			verb += " not"
		}
		reason = fmt.Sprintf("Threshold Crossed: %d %s [%s] %s %s the threshold (%s).",
			len(pts), noun, strings.Join(pts, ", "), verb, opWords[a.ComparisonOperator], fmtValue(a.Threshold))
	}
	data, _ := json.Marshal(map[string]any{
		"version":             "1.0",
		"queryDate":           now.UTC().Format("2006-01-02T15:04:05.000+0000"),
		"startDate":           first(recentStarts),
		"statistic":           a.Statistic + a.ExtendedStatistic,
		"period":              a.Period,
		"recentDatapoints":    recent,
		"threshold":           a.Threshold,
		"evaluatedDatapoints": len(recent),
	})
	return reason, string(data)
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

func treatWord(t string) string {
	switch t {
	case "breaching":
		return "Breaching"
	case "notBreaching":
		return "NonBreaching"
	case "ignore":
		return "Ignore"
	}
	return "Missing"
}

func fmtValue(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprint(v)
}

// setStateLocked records a state; a change is logged and goes into the history.
func (s *Service) setStateLocked(a *alarmState, now time.Time, state, reason, data string) {
	a.StateUpdatedTimestamp = Epoch{now}
	if state == a.StateValue {
		return
	}
	old := a.StateValue
	a.StateValue, a.StateReason, a.StateReasonData = state, reason, data
	a.StateTransitionedTimestamp = Epoch{now}
	s.log.Info("alarm state changed", "alarm", a.AlarmName, "from", old, "to", state, "reason", reason)
	hd, _ := json.Marshal(map[string]any{
		"version":  "1.0",
		"oldState": map[string]string{"stateValue": old},
		"newState": map[string]string{"stateValue": state, "stateReason": reason},
	})
	s.history = append(s.history, HistoryItem{
		AlarmName: a.AlarmName, AlarmType: "MetricAlarm", Timestamp: Epoch{now}, HistoryItemType: "StateUpdate",
		HistorySummary: fmt.Sprintf("Alarm updated from %s to %s", old, state), HistoryData: string(hd),
	})
	if len(s.history) > 10000 {
		s.history = slices.Delete(s.history, 0, len(s.history)-10000)
	}
}
