// Command gangway-app is the CDK app in cdk/: one stack with one GangwayService, configured
// through context values (cdk.json, or -c key=value on the command line). cdk/README.md lists
// every value. `npx cdk synth` and `npx cdk deploy` run it through cdk.json.
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
)

func main() {
	defer jsii.Close()
	app := awscdk.NewApp(nil)
	if err := build(app, contextOf(app)); err != nil {
		fmt.Fprintf(os.Stderr, "gangway-app: %v\n", err)
		os.Exit(1)
	}
	app.Synth(nil)
}

// contextOf reads a context value as a string ("" when unset).
func contextOf(app awscdk.App) func(string) string {
	return func(key string) string {
		v := app.Node().TryGetContext(jsii.String(key))
		if v == nil {
			return ""
		}
		if s, ok := v.(string); ok {
			return s
		}
		return fmt.Sprint(v)
	}
}
