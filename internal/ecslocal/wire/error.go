// Package wire encodes and decodes the two AWS protocols ecslocal serves, for the shapes of
// aws-sdk-go-v2: awsJson1_1 (Amazon ECS) and awsQuery with XML responses (Elastic Load
// Balancing v2). It knows nothing of the services; the shapes come from the SDK, so a member
// the SDK has is a member the server reads and writes under its model name.
package wire

import (
	"fmt"
	"net/http"
)

// Error is an error an API answers with: Code is the error's wire code (for awsJson the shape
// name, for awsQuery the model's awsQueryError code), Status the HTTP status.
type Error struct {
	Code    string
	Message string
	Status  int
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf builds a client-fault Error (HTTP 400).
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Status: http.StatusBadRequest}
}
