package lambda

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// PathPrefix is where the Lambda API's function operations live.
const PathPrefix = "/2015-03-31/functions"

// apiError is an error of the Lambda API: the X-Amzn-ErrorType header names it, the JSON body
// says why.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

// configuration is the FunctionConfiguration shape, the members ecslocal models.
type configuration struct {
	FunctionName  string
	FunctionArn   string
	Runtime       string `json:",omitempty"`
	Handler       string `json:",omitempty"`
	Timeout       int
	MemorySize    int
	Version       string
	State         string
	PackageType   string
	Environment   *environment `json:",omitempty"`
	LoggingConfig loggingConfig
}

// loggingConfig is the LoggingConfig shape: ecslocal writes plain text, so LogFormat is Text
// and there are no log levels.
type loggingConfig struct {
	LogFormat string
	LogGroup  string
}

type environment struct {
	Variables map[string]string
}

func (s *Service) config(f Function) configuration {
	c := configuration{
		FunctionName: f.Name, FunctionArn: s.ARN(f.Name), Runtime: f.Runtime, Handler: f.Handler,
		Timeout: f.Timeout, MemorySize: f.MemorySize, Version: "$LATEST", State: "Active", PackageType: "Zip",
		LoggingConfig: loggingConfig{LogFormat: "Text", LogGroup: f.logGroup()},
	}
	if len(f.Environment) > 0 {
		c.Environment = &environment{Variables: f.Environment}
	}
	return c
}

// ServeHTTP serves the Lambda API's function operations under PathPrefix.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), PathPrefix)
	if !ok {
		writeError(w, &apiError{http.StatusNotFound, "UnknownOperationException", "no Lambda operation at " + r.URL.Path})
		return
	}
	rest = strings.Trim(rest, "/")
	parts := strings.Split(rest, "/")
	name := ""
	if rest != "" {
		var err error
		if name, err = url.PathUnescape(parts[0]); err != nil {
			writeError(w, &apiError{http.StatusBadRequest, "InvalidParameterValueException", "function name: " + err.Error()})
			return
		}
	}
	switch {
	case rest == "" && r.Method == http.MethodGet:
		s.listFunctions(w)
	case rest == "" && r.Method == http.MethodPost:
		s.createFunction(w, r)
	case len(parts) == 1 && r.Method == http.MethodGet:
		s.getFunction(w, name)
	case len(parts) == 1 && r.Method == http.MethodDelete:
		if err := s.DeleteFunction(name); err != nil {
			writeError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case len(parts) == 2 && parts[1] == "configuration" && r.Method == http.MethodGet:
		fn, err := s.lookup(name)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, s.config(fn.Function))
	case len(parts) == 2 && parts[1] == "invocations" && r.Method == http.MethodPost:
		s.invoke(w, r, name)
	default:
		writeError(w, &apiError{http.StatusNotFound, "UnknownOperationException", fmt.Sprintf("ecslocal does not implement the Lambda operation %s %s", r.Method, r.URL.Path)})
	}
}

func (s *Service) listFunctions(w http.ResponseWriter) {
	out := struct{ Functions []configuration }{Functions: []configuration{}}
	for _, f := range s.Functions() {
		out.Functions = append(out.Functions, s.config(f))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Service) getFunction(w http.ResponseWriter, name string) {
	fn, err := s.lookup(name)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Configuration configuration
		Code          map[string]string
	}{s.config(fn.Function), map[string]string{"RepositoryType": "S3", "Location": "file://" + fn.Code}})
}

// createFunction takes the function's code as a zip file (Code.ZipFile); S3 and image code
// are refused, there being no S3 or registry to fetch them from.
func (s *Service) createFunction(w http.ResponseWriter, r *http.Request) {
	var in struct {
		FunctionName, Runtime, Handler string
		Timeout, MemorySize            int
		Code                           struct {
			ZipFile         []byte
			S3Bucket, S3Key string
			ImageUri        string
		}
		Environment   *environment
		LoggingConfig *struct{ LogFormat, LogGroup string }
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeError(w, &apiError{http.StatusBadRequest, "InvalidParameterValueException", "CreateFunction: " + err.Error()})
		return
	}
	if lc := in.LoggingConfig; lc != nil && lc.LogFormat != "" && lc.LogFormat != "Text" {
		writeError(w, &apiError{http.StatusBadRequest, "InvalidParameterValueException", fmt.Sprintf("function %s: LoggingConfig.LogFormat %q: ecslocal writes Text logs only", in.FunctionName, lc.LogFormat)})
		return
	}
	if len(in.Code.ZipFile) == 0 {
		writeError(w, &apiError{http.StatusBadRequest, "InvalidParameterValueException", fmt.Sprintf("function %s: ecslocal takes a function's code as Code.ZipFile only (no S3, no images)", in.FunctionName)})
		return
	}
	if !nameRE.MatchString(in.FunctionName) || s.o.Dir == "" {
		_, err := s.CreateFunction(Function{Name: in.FunctionName}) // the name's error
		if err == nil || s.o.Dir == "" {
			err = &apiError{http.StatusBadRequest, "InvalidParameterValueException", "ecslocal has no directory for function code"}
		}
		writeError(w, err)
		return
	}
	dir, err := os.MkdirTemp(s.o.Dir, in.FunctionName+"-")
	if err == nil {
		err = unzip(in.Code.ZipFile, dir)
	}
	if err != nil {
		writeError(w, &apiError{http.StatusBadRequest, "InvalidParameterValueException", fmt.Sprintf("function %s: Code.ZipFile: %v", in.FunctionName, err)})
		return
	}
	f := Function{Name: in.FunctionName, Code: dir, Runtime: in.Runtime, Handler: in.Handler, Timeout: in.Timeout, MemorySize: in.MemorySize}
	if in.Environment != nil {
		f.Environment = in.Environment.Variables
	}
	if in.LoggingConfig != nil {
		f.LogGroup = in.LoggingConfig.LogGroup
	}
	if _, err := s.CreateFunction(f); err != nil {
		_ = os.RemoveAll(dir)
		writeError(w, err)
		return
	}
	fn, _ := s.lookup(f.Name)
	writeJSON(w, http.StatusCreated, s.config(fn.Function))
}

// invoke serves Invoke: RequestResponse waits for the function (200, X-Amz-Function-Error
// on a function error), Event runs it in the background (202), DryRun only checks that it
// exists (204).
func (s *Service) invoke(w http.ResponseWriter, r *http.Request, name string) {
	payload, err := io.ReadAll(io.LimitReader(r.Body, 6<<20))
	if err != nil {
		writeError(w, &apiError{http.StatusBadRequest, "InvalidRequestContentException", err.Error()})
		return
	}
	if len(payload) > 0 && !json.Valid(payload) {
		writeError(w, &apiError{http.StatusBadRequest, "InvalidRequestContentException", "Could not parse request body into json"})
		return
	}
	if _, err := s.lookup(name); err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("X-Amz-Executed-Version", "$LATEST")
	switch t := r.Header.Get("X-Amz-Invocation-Type"); t {
	case "", "RequestResponse":
	case "DryRun":
		w.WriteHeader(http.StatusNoContent)
		return
	case "Event":
		go func() {
			if _, err := s.Invoke(context.WithoutCancel(r.Context()), name, payload); err != nil {
				s.log.Warn("asynchronous invocation failed", "function", name, "error", err)
			}
		}()
		w.WriteHeader(http.StatusAccepted)
		return
	default:
		writeError(w, &apiError{http.StatusBadRequest, "InvalidParameterValueException", fmt.Sprintf("X-Amz-Invocation-Type %q: want RequestResponse, Event or DryRun", t)})
		return
	}
	res, err := s.Invoke(r.Context(), name, payload)
	if err != nil {
		writeError(w, err)
		return
	}
	if res.FunctionError != "" {
		w.Header().Set("X-Amz-Function-Error", res.FunctionError)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(res.Payload)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	raw, err := json.Marshal(v)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(raw)
}

// writeError answers with the Lambda API's error form; an error that is not the API's is a
// ServiceException (500).
func writeError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{http.StatusInternalServerError, "ServiceException", err.Error()}
	}
	typ := "User"
	if ae.status >= 500 {
		typ = "Service"
	}
	raw, _ := json.Marshal(map[string]string{"Type": typ, "message": ae.message})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", ae.code)
	w.WriteHeader(ae.status)
	_, _ = w.Write(raw)
}
