package startpages

// Result says what Release did.
type Result struct {
	Released int64 // resident bytes of the mappings released
	Mappings int   // mappings released
	Kept     int   // read-only mappings kept: they hold anonymous pages, or smaps does not say
}
