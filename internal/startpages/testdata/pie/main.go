// Command pie releases its start-up pages and then runs code and reads data that live in
// the mappings it released, and in the one it must keep: built with -buildmode=pie, its
// relocated read-only data (type descriptors, interface tables, the pointers of composite
// literals) was written by the dynamic linker. It prints what Release did and "ok".
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/gangway-ecs/gangway/internal/startpages"
)

var table = map[string][]string{"a": {"x", "y"}, "b": {"z"}}

func main() {
	res, err := startpages.Release()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pie:", err)
		os.Exit(1)
	}
	keys := make([]string, 0, len(table))
	for k := range table {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var s fmt.Stringer = &strings.Builder{}
	b, err := json.Marshal(struct {
		Keys []string
		Type string
	}{keys, fmt.Sprintf("%T", s)})
	if err != nil || string(b) != `{"Keys":["a","b"],"Type":"*strings.Builder"}` {
		fmt.Fprintf(os.Stderr, "pie: %s %v\n", b, err)
		os.Exit(1)
	}
	fmt.Printf("released %d mappings, kept %d\nok\n", res.Mappings, res.Kept)
}
