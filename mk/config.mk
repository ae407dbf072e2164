# Configuration (internal/config): the parser's fuzz target runs briefly in `make test`.
FUZZ_TARGETS += ./internal/config:FuzzParse
