package config

import (
	"fmt"
	"strings"
)

// FieldError is one problem in a configuration. Path names the field the way
// the YAML spells it ("backends[1].address"); it is empty for problems with
// the document as a whole, such as a YAML syntax error. When the problem was
// found while decoding, Msg ends with the line: "unknown field (line 12)".
type FieldError struct {
	Path string
	Msg  string
}

func (e FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Errors is every problem found in a configuration, in document order for
// decoding problems and in schema order for validation problems.
type Errors []FieldError

// Error joins the problems one per line as "path: msg".
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// add records a problem at path.
func (es *Errors) add(path, format string, args ...any) {
	*es = append(*es, FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// err returns es as an error, or nil when it is empty, so that callers never
// get a non-nil error holding no problems.
func (es Errors) err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// field and index build field paths.
func field(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

func index(parent string, i int) string { return fmt.Sprintf("%s[%d]", parent, i) }
