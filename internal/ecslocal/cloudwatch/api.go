package cloudwatch

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// TargetPrefix is the X-Amz-Target prefix of CloudWatch's awsJson1_0 protocol, which the AWS
// CLI speaks since CloudWatch's model moved off awsQuery (December 2025).
const TargetPrefix = "GraniteServiceVersion20100801."

// apiError is an error of the CloudWatch API: the shape name for awsJson's __type and the
// awsQuery code that awsQueryCompatible clients read from x-amzn-query-error.
type apiError struct {
	shape, code, message string
	status               int
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func invalid(format string, args ...any) error {
	return &apiError{"InvalidParameterValueException", "InvalidParameterValue", fmt.Sprintf(format, args...), http.StatusBadRequest}
}

func missingParam(name string) error {
	return &apiError{"MissingRequiredParameterException", "MissingParameter", "The parameter " + name + " is required.", http.StatusBadRequest}
}

func (s *Service) ARN(name string) string {
	return fmt.Sprintf("arn:aws:cloudwatch:%s:%s:alarm:%s", s.o.Region, s.o.Account, name)
}

var (
	statistics  = []string{"SampleCount", "Average", "Sum", "Minimum", "Maximum"}
	operators   = []string{"GreaterThanOrEqualToThreshold", "GreaterThanThreshold", "LessThanThreshold", "LessThanOrEqualToThreshold"}
	treatments  = []string{"breaching", "notBreaching", "ignore", "missing"}
	stateValues = []string{StateOK, StateAlarm, StateInsufficient}
	extendedRE  = regexp.MustCompile(`^p(100(\.0+)?|[0-9]{1,2}(\.[0-9]+)?)$`)
)

// PutMetricAlarm creates or replaces an alarm; a replaced alarm keeps its state and is
// evaluated anew, a new one starts INSUFFICIENT_DATA ("Unchecked: Initial alarm creation").
// The checks are the API reference's (PutMetricAlarm).
func (s *Service) PutMetricAlarm(in Alarm) error {
	switch {
	case in.AlarmName == "":
		return missingParam("AlarmName")
	case len(in.AlarmName) > 255:
		return invalid("AlarmName %q: at most 255 characters", in.AlarmName)
	case in.EvaluationPeriods < 1:
		return missingParam("EvaluationPeriods")
	case in.ComparisonOperator == "":
		return missingParam("ComparisonOperator")
	case !slices.Contains(operators, in.ComparisonOperator):
		return invalid("alarm %s: ComparisonOperator %q: want one of %s", in.AlarmName, in.ComparisonOperator, strings.Join(operators, ", "))
	case in.TreatMissingData != "" && !slices.Contains(treatments, in.TreatMissingData):
		return invalid("alarm %s: TreatMissingData %q: want one of %s", in.AlarmName, in.TreatMissingData, strings.Join(treatments, ", "))
	case in.DatapointsToAlarm < 0 || in.DatapointsToAlarm > in.EvaluationPeriods:
		return invalid("alarm %s: DatapointsToAlarm %d: want 1 to EvaluationPeriods (%d)", in.AlarmName, in.DatapointsToAlarm, in.EvaluationPeriods)
	}
	if len(in.Metrics) == 0 {
		switch {
		case in.MetricName == "":
			return missingParam("MetricName")
		case in.Namespace == "":
			return missingParam("Namespace")
		case (in.Statistic == "") == (in.ExtendedStatistic == ""):
			return invalid("alarm %s: exactly one of Statistic and ExtendedStatistic must be set", in.AlarmName)
		case in.Statistic != "" && !slices.Contains(statistics, in.Statistic):
			return invalid("alarm %s: Statistic %q: want one of %s", in.AlarmName, in.Statistic, strings.Join(statistics, ", "))
		case in.ExtendedStatistic != "" && !extendedRE.MatchString(in.ExtendedStatistic):
			return invalid("alarm %s: ExtendedStatistic %q: ecslocal takes percentiles, p0.0 to p100", in.AlarmName, in.ExtendedStatistic)
		case in.Period < 10 || in.Period < 60 && in.Period != 10 && in.Period != 30 || in.Period >= 60 && in.Period%60 != 0:
			return invalid("alarm %s: Period %d: want 10, 30 or a multiple of 60", in.AlarmName, in.Period)
		case int64(in.Period)*int64(in.EvaluationPeriods) > 86400:
			return invalid("alarm %s: Period × EvaluationPeriods (%d s) must be at most one day", in.AlarmName, int64(in.Period)*int64(in.EvaluationPeriods))
		}
	} else if in.MetricName != "" || in.Namespace != "" || in.Statistic != "" {
		return invalid("alarm %s: Metrics and MetricName/Namespace/Statistic are mutually exclusive", in.AlarmName)
	}
	now := s.o.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	a := &alarmState{Alarm: in}
	a.AlarmArn = s.ARN(in.AlarmName)
	a.AlarmConfigurationUpdatedTimestamp = Epoch{now}
	if old, ok := s.alarms[in.AlarmName]; ok {
		a.StateValue, a.StateReason, a.StateReasonData = old.StateValue, old.StateReason, old.StateReasonData
		a.StateUpdatedTimestamp, a.StateTransitionedTimestamp = old.StateUpdatedTimestamp, old.StateTransitionedTimestamp
	} else {
		a.StateValue, a.StateReason = StateInsufficient, "Unchecked: Initial alarm creation"
		a.StateUpdatedTimestamp, a.StateTransitionedTimestamp = Epoch{now}, Epoch{now}
	}
	if a.Dimensions == nil {
		a.Dimensions = []Dimension{}
	}
	s.alarms[in.AlarmName] = a
	s.evaluateLocked(a, now)
	return nil
}

// DeleteAlarms deletes the named alarms; a name that is not an alarm fails the call and
// deletes nothing (ResourceNotFound).
func (s *Service) DeleteAlarms(names []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		if _, ok := s.alarms[n]; !ok {
			return &apiError{"ResourceNotFound", "ResourceNotFound", "The named resource does not exist: " + n, http.StatusNotFound}
		}
	}
	for _, n := range names {
		delete(s.alarms, n)
	}
	return nil
}

// SetAlarmState sets an alarm's state until its next evaluation, as the API documents.
func (s *Service) SetAlarmState(name, state, reason, data string) error {
	if !slices.Contains(stateValues, state) {
		return invalid("StateValue %q: want one of %s", state, strings.Join(stateValues, ", "))
	}
	if reason == "" {
		return missingParam("StateReason")
	}
	if data != "" && !json.Valid([]byte(data)) {
		return invalid("StateReasonData is not valid JSON")
	}
	now := s.o.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.alarms[name]
	if !ok {
		return &apiError{"ResourceNotFound", "ResourceNotFound", "The named resource does not exist: " + name, http.StatusNotFound}
	}
	s.setStateLocked(a, now, state, reason, data)
	a.StateReason, a.StateReasonData = reason, data
	// Evaluated again one evaluation interval from now.
	a.lastEval = now
	return nil
}

// Alarms returns the alarms whose names are in names (all when empty) or start with
// prefix, in a state (any when ""), by name.
func (s *Service) Alarms(names []string, prefix, state string) []Alarm {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Alarm
	for _, a := range s.alarms {
		if len(names) > 0 && !slices.Contains(names, a.AlarmName) ||
			!strings.HasPrefix(a.AlarmName, prefix) || state != "" && a.StateValue != state {
			continue
		}
		out = append(out, a.Alarm)
	}
	slices.SortFunc(out, func(a, b Alarm) int { return strings.Compare(a.AlarmName, b.AlarmName) })
	return out
}

// ServeHTTP serves the awsJson1_0 protocol: POST / with X-Amz-Target
// GraniteServiceVersion20100801.<Op>; and the RPC v2 CBOR protocol (serveCBOR) on
// CBORPathPrefix.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if op, ok := strings.CutPrefix(r.URL.Path, CBORPathPrefix); ok {
		s.serveCBOR(w, r, op)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), TargetPrefix)
	if !ok {
		writeError(w, &apiError{"UnknownOperationException", "InvalidAction", "X-Amz-Target " + r.Header.Get("X-Amz-Target") + " is not an operation of Amazon CloudWatch", http.StatusBadRequest})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeError(w, invalid("reading the request: %v", err))
		return
	}
	if len(body) == 0 {
		body = []byte("{}")
	}
	out, err := s.call(op, jsonInput(op, body))
	if err != nil {
		s.log.Info("cloudwatch", "op", op, "error", err)
		writeError(w, err)
		return
	}
	raw, err := json.Marshal(out)
	if err != nil {
		writeError(w, err)
		return
	}
	s.log.Debug("cloudwatch", "op", op)
	_, _ = w.Write(raw)
}

// jsonInput returns the decoder of op's input, the JSON body: an input that does not
// decode into the operation's shape is a SerializationException naming the operation.
func jsonInput(op string, body []byte) func(any) error {
	return func(v any) error {
		if err := json.Unmarshal(body, v); err != nil {
			return serializationError(op, err)
		}
		return nil
	}
}

func serializationError(op string, err error) error {
	return &apiError{"SerializationException", "InvalidParameterValue", op + ": " + err.Error(), http.StatusBadRequest}
}

type empty struct{}

func (s *Service) call(op string, decode func(any) error) (any, error) {
	switch op {
	case "PutMetricAlarm":
		var in Alarm
		if err := decode(&in); err != nil {
			return nil, err
		}
		// Not the caller's to set.
		in.StateValue, in.StateReason, in.StateReasonData, in.AlarmArn = "", "", "", ""
		if err := decodeActionsEnabled(decode, &in); err != nil {
			return nil, err
		}
		return empty{}, s.PutMetricAlarm(in)
	case "DescribeAlarms":
		var in struct {
			AlarmNames      []string
			AlarmNamePrefix string
			StateValue      string
			AlarmTypes      []string
			MaxRecords      int
			NextToken       string
		}
		if err := decode(&in); err != nil {
			return nil, err
		}
		all := s.Alarms(in.AlarmNames, in.AlarmNamePrefix, in.StateValue)
		if len(in.AlarmTypes) > 0 && !slices.Contains(in.AlarmTypes, "MetricAlarm") {
			all = nil
		}
		page, next, err := paginate(all, in.MaxRecords, in.NextToken)
		if err != nil {
			return nil, err
		}
		return struct {
			MetricAlarms    []Alarm
			CompositeAlarms []struct{}
			NextToken       string `json:",omitempty"`
		}{page, []struct{}{}, next}, nil
	case "DeleteAlarms":
		var in struct{ AlarmNames []string }
		if err := decode(&in); err != nil {
			return nil, err
		}
		return empty{}, s.DeleteAlarms(in.AlarmNames)
	case "SetAlarmState":
		var in struct{ AlarmName, StateValue, StateReason, StateReasonData string }
		if err := decode(&in); err != nil {
			return nil, err
		}
		return empty{}, s.SetAlarmState(in.AlarmName, in.StateValue, in.StateReason, in.StateReasonData)
	case "DescribeAlarmHistory":
		var in struct {
			AlarmName       string
			HistoryItemType string
			MaxRecords      int
			NextToken       string
		}
		if err := decode(&in); err != nil {
			return nil, err
		}
		s.mu.Lock()
		var items []HistoryItem
		for i := len(s.history) - 1; i >= 0; i-- { // newest first
			h := s.history[i]
			if (in.AlarmName == "" || h.AlarmName == in.AlarmName) && (in.HistoryItemType == "" || h.HistoryItemType == in.HistoryItemType) {
				items = append(items, h)
			}
		}
		s.mu.Unlock()
		page, next, err := paginate(items, in.MaxRecords, in.NextToken)
		if err != nil {
			return nil, err
		}
		return struct {
			AlarmHistoryItems []HistoryItem
			NextToken         string `json:",omitempty"`
		}{page, next}, nil
	case "GetMetricStatistics":
		var in struct {
			Namespace, MetricName string
			Dimensions            []Dimension
			StartTime, EndTime    Epoch
			Period                int32
			Statistics            []string
			ExtendedStatistics    []string
		}
		if err := decode(&in); err != nil {
			return nil, err
		}
		return s.getMetricStatistics(in.Namespace, in.MetricName, in.Dimensions, in.StartTime.Time, in.EndTime.Time, in.Period, in.Statistics, in.ExtendedStatistics)
	}
	if slices.Contains(knownOps, op) {
		return nil, &apiError{"InvalidAction", "InvalidAction", "ecslocal does not implement the CloudWatch operation " + op, http.StatusBadRequest}
	}
	return nil, &apiError{"UnknownOperationException", "InvalidAction", op + " is not an operation of Amazon CloudWatch", http.StatusBadRequest}
}

// decodeActionsEnabled applies ActionsEnabled's default, true, when the request leaves it out.
func decodeActionsEnabled(decode func(any) error, in *Alarm) error {
	var raw map[string]json.RawMessage
	if err := decode(&raw); err != nil {
		return err
	}
	if _, ok := raw["ActionsEnabled"]; !ok {
		in.ActionsEnabled = true
	}
	return nil
}

// knownOps are CloudWatch operations ecslocal does not implement: refused by name.
var knownOps = []string{
	"DeleteAnomalyDetector", "DeleteDashboards", "DeleteInsightRules", "DeleteMetricStream",
	"DescribeAlarmsForMetric", "DescribeAnomalyDetectors", "DescribeInsightRules",
	"DisableAlarmActions", "EnableAlarmActions", "GetDashboard", "GetMetricData",
	"GetMetricWidgetImage", "ListDashboards", "ListMetrics", "ListTagsForResource",
	"PutCompositeAlarm", "PutDashboard", "PutMetricData", "TagResource", "UntagResource",
}

func paginate[T any](all []T, maxRecords int, token string) ([]T, string, error) {
	if maxRecords <= 0 || maxRecords > 100 {
		maxRecords = 100
	}
	start := 0
	if token != "" {
		n, err := strconv.Atoi(token)
		if err != nil || n < 0 || n > len(all) {
			return nil, "", invalid("NextToken %q is not valid", token)
		}
		start = n
	}
	end := min(start+maxRecords, len(all))
	next := ""
	if end < len(all) {
		next = strconv.Itoa(end)
	}
	page := all[start:end]
	if page == nil {
		page = []T{}
	}
	return page, next, nil
}

// datapointOut is the Datapoint shape of GetMetricStatistics.
type datapointOut struct {
	Timestamp          Epoch
	SampleCount        *float64           `json:",omitempty"`
	Average            *float64           `json:",omitempty"`
	Sum                *float64           `json:",omitempty"`
	Minimum            *float64           `json:",omitempty"`
	Maximum            *float64           `json:",omitempty"`
	ExtendedStatistics map[string]float64 `json:",omitempty"`
	Unit               string
}

// getMetricStatistics answers from the samples ecslocal still holds (the longest alarm
// window, or ten scaled minutes); the period is scaled like an alarm's.
func (s *Service) getMetricStatistics(ns, name string, dims []Dimension, start, end time.Time, period int32, stats, ext []string) (any, error) {
	if period < 1 || len(stats)+len(ext) == 0 || !end.After(start) {
		return nil, invalid("GetMetricStatistics needs a Period, StartTime before EndTime and at least one statistic")
	}
	for _, st := range stats {
		if !slices.Contains(statistics, st) {
			return nil, invalid("Statistics: %q: want one of %s", st, strings.Join(statistics, ", "))
		}
	}
	p := s.scale(float64(period))
	if (end.Sub(start))/max(p, time.Millisecond) > 1440 {
		return nil, invalid("GetMetricStatistics: at most 1,440 data points per call")
	}
	unit := "Count"
	if name == metricResponseTime {
		unit = "Seconds"
	}
	out := struct {
		Label      string
		Datapoints []datapointOut
	}{Label: name, Datapoints: []datapointOut{}}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ns != namespaceALB {
		return out, nil
	}
	for t := start; t.Before(end); t = t.Add(p) {
		d, ok := point(s.samples, name, dims, t, t.Add(p))
		if !ok {
			continue
		}
		dp := datapointOut{Timestamp: Epoch{t}, Unit: unit}
		for _, st := range stats {
			v := d.stat(st)
			switch st {
			case "SampleCount":
				dp.SampleCount = &v
			case "Average":
				dp.Average = &v
			case "Sum":
				dp.Sum = &v
			case "Minimum":
				dp.Minimum = &v
			case "Maximum":
				dp.Maximum = &v
			}
		}
		for _, e := range ext {
			if dp.ExtendedStatistics == nil {
				dp.ExtendedStatistics = map[string]float64{}
			}
			dp.ExtendedStatistics[e] = d.stat(e)
		}
		out.Datapoints = append(out.Datapoints, dp)
	}
	return out, nil
}

// writeError answers in awsJson1_0's error form, with the awsQuery code in
// x-amzn-query-error for the clients that read it (the model is awsQueryCompatible).
func writeError(w http.ResponseWriter, err error) {
	ae := asAPIError(err)
	setErrorHeaders(w, ae)
	w.WriteHeader(ae.status)
	raw, _ := json.Marshal(map[string]string{"__type": ae.shape, "message": ae.message})
	_, _ = w.Write(raw)
}

// asAPIError returns err as an error of the API: a fault of the service if it is none.
func asAPIError(err error) *apiError {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{"InternalServiceFault", "InternalServiceError", err.Error(), http.StatusInternalServerError}
	}
	return ae
}

// setErrorHeaders sets the headers of an error answer: the awsQuery code and fault that
// awsQueryCompatible clients read, and the error's shape.
func setErrorHeaders(w http.ResponseWriter, ae *apiError) {
	fault := "Sender"
	if ae.status >= 500 {
		fault = "Receiver"
	}
	w.Header().Set("x-amzn-query-error", ae.code+";"+fault)
	w.Header().Set("X-Amzn-ErrorType", ae.shape)
}
