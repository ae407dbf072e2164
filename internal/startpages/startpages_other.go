//go:build !linux

// Package startpages gives back the pages of the executable that start-up touched and
// serving does not use; only on Linux, which says which they are in /proc/self/smaps.
package startpages

// Result says what Release did.
type Result struct {
	Released int64 // resident bytes of the mappings released
	Mappings int   // mappings released
	Kept     int   // read-only mappings kept: they hold anonymous pages, or smaps does not say
}

// Release does nothing here.
func Release() (Result, error) { return Result{}, nil }
