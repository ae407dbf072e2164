// Command relay is a Lambda function for the tests, speaking the runtime API directly: for
// every invocation it answers the body of a GET of $RELAY_URL. The GET has no timeout and
// ignores the invocation's deadline, so a slow URL makes a function that outlives its
// timeout (the readiness hook, unlike it, answers in time).
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

func main() {
	api := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/invocation/"
	for {
		next, err := http.Get(api + "next")
		if err != nil {
			fmt.Fprintln(os.Stderr, "relay:", err)
			os.Exit(1)
		}
		id := next.Header.Get("Lambda-Runtime-Aws-Request-Id")
		_, _ = io.Copy(io.Discard, next.Body)
		next.Body.Close()

		answer := "response"
		body, err := get(os.Getenv("RELAY_URL"))
		if err != nil {
			answer, body = "error", fmt.Sprintf(`{"errorMessage":%q,"errorType":"RelayError"}`, err)
		}
		resp, err := http.Post(api+id+"/"+answer, "application/json", strings.NewReader(body))
		if err != nil {
			fmt.Fprintln(os.Stderr, "relay:", err)
			os.Exit(1)
		}
		resp.Body.Close()
	}
}

func get(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
