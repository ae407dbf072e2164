package config

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"
)

// MaxFileSize bounds the configuration file that Load reads.
const MaxFileSize = 4 << 20

// DefaultFile is Config.File for the embedded default configuration.
const DefaultFile = "embedded:default.yaml"

//go:embed default.yaml
var defaultYAML []byte

// Load reads and parses the configuration file at path. Relative file names in the
// configuration (certificates, keys, CAs) are resolved against the file's directory. Errors
// name the file as given in path.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("read config %s: larger than %d bytes", path, MaxFileSize)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	return parse(path, filepath.Dir(abs), data, true)
}

// Parse parses a configuration document. filename names it in errors, and its directory is
// the base of relative file names in the configuration. The error, when not nil, is an
// Errors holding every problem found.
func Parse(filename string, data []byte) (*Config, error) {
	return parse(filename, filepath.Dir(filename), data, true)
}

// Default returns the embedded default configuration: a listener "public" on :8080 whose
// route "/" goes to the built-in demo upstream. Each call returns a new Config.
func Default() *Config {
	c, err := parse(DefaultFile, "", defaultYAML, true)
	if err != nil {
		// The embedded file is part of the binary and tested; this cannot happen at run time.
		panic(fmt.Sprintf("config: the embedded default is invalid: %v", err))
	}
	return c
}

// parse decodes, defaults and checks data. files says whether the files the configuration
// names (certificates, keys, CAs) are on this file system and are read and checked.
func parse(filename, dir string, data []byte, files bool) (*Config, error) {
	d := newDecoder(filename)
	root, err := d.document(data)
	if err != nil {
		return nil, err
	}
	c := &Config{}
	if root != nil {
		d.value("", nil, root, reflect.ValueOf(c).Elem())
	}
	applyDefaults(c, d)
	check(c, d, dir, files)
	if len(d.errs) > 0 {
		d.errs.sortByPosition()
		return nil, d.errs
	}
	c.File = filename
	c.Version = version(c)
	return c, nil
}

// document parses data into the root mapping node. It returns nil for an empty document, and
// a syntax error as Errors.
func (d *decoder) document(data []byte) (root *yaml.Node, err error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := decodeNode(dec, &doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		d.syntaxError(err)
		return nil, d.errs
	}
	var next yaml.Node
	switch err := decodeNode(dec, &next); {
	case err == nil:
		d.errorf(&next, "", "a configuration file holds one YAML document; remove the second one (after ---)")
	case !errors.Is(err, io.EOF):
		d.syntaxError(err)
	}
	if len(d.errs) > 0 {
		return nil, d.errs
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

// decodeNode decodes the next document, turning a panic inside the YAML library (on input
// no valid configuration contains) into an error, since the input comes from the user.
func decodeNode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: %v", r)
		}
	}()
	return dec.Decode(n)
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError records a YAML syntax error with its line when the library gives one.
func (d *decoder) syntaxError(err error) {
	e := &FieldError{File: d.file, Msg: "invalid YAML: " + err.Error()}
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = "invalid YAML: " + m[2]
	}
	d.errs = append(d.errs, e)
}

// version is a short digest of the canonical form of c: the defaulted configuration marshalled
// again, so comments, formatting, key order and spelled-out defaults do not change it.
func version(c *Config) string {
	canonical, err := yaml.Marshal(c)
	if err != nil {
		panic(fmt.Sprintf("config: marshal: %v", err)) // plain data types always marshal
	}
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:8])
}
