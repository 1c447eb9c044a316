package config

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Environment references in scalar values:
//
//	${NAME}          the value of NAME; an error if NAME is not set
//	${NAME:-default} the value of NAME, or default if NAME is unset or empty
//	$$               a literal "$" (so "$${X}" stays "${X}")
//
// Any other "$" is kept as it is. A default runs to the first "}" and is not
// itself expanded. Only scalar values are expanded, never mapping keys or
// comments, and expansion happens on the parsed YAML tree, so a value can
// never inject YAML structure.

// expandEnv rewrites every scalar value under root in place and returns the
// nodes it changed and those it could not expand. A changed scalar loses its
// quoting and tag so that the decoder resolves it afresh: `weight: "${W:-2}"`
// is an integer once expanded. Problems are added to errs with the field path
// and line.
func expandEnv(root *yaml.Node, lookup func(string) (string, bool), errs *Errors) expansion {
	x := &expander{lookup: lookup, errs: errs, expansion: expansion{
		changed: map[*yaml.Node]bool{},
		failed:  map[*yaml.Node]bool{},
	}}
	x.walk(root, "")
	return x.expansion
}

// expansion records what expandEnv did to the tree.
type expansion struct {
	changed map[*yaml.Node]bool // value replaced; decode it verbatim, never as null
	failed  map[*yaml.Node]bool // left as is; already reported, so not decoded
}

type expander struct {
	expansion
	lookup func(string) (string, bool)
	errs   *Errors
}

func (x *expander) walk(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			x.walk(c, path)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			x.walk(n.Content[i+1], field(path, n.Content[i].Value))
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			x.walk(c, index(path, i))
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return
		}
		out, problems := expandString(n.Value, x.lookup)
		for _, p := range problems {
			x.errs.add(path, "%s (line %d)", p, n.Line)
		}
		if len(problems) > 0 {
			// Leave the node alone; the decoder skips it so that one
			// missing variable does not also show up as a type error.
			x.failed[n] = true
			return
		}
		if out != n.Value {
			n.Value = out
			if n.Style&yaml.TaggedStyle == 0 {
				n.Style = 0
				n.Tag = ""
			}
			x.changed[n] = true
		}
	}
	// Aliases are not followed: the anchored node is expanded where it is
	// defined, and the alias shares it.
}

// expandString expands s as described above, returning the result and a
// description of each problem found.
func expandString(s string, lookup func(string) (string, bool)) (string, []string) {
	var b strings.Builder
	var problems []string
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				// The value is not quoted: it may be a secret.
				problems = append(problems, fmt.Sprintf("unterminated ${ at byte %d of the value", i))
				return s, problems
			}
			ref := s[i+2 : i+2+end]
			i += 2 + end
			name, def, hasDef := strings.Cut(ref, ":-")
			if !validEnvName(name) {
				problems = append(problems, fmt.Sprintf("invalid environment variable name %q in \"${%s}\"", name, ref))
				continue
			}
			val, ok := lookup(name)
			switch {
			case hasDef && val == "":
				b.WriteString(def)
			case ok:
				b.WriteString(val)
			default:
				problems = append(problems, fmt.Sprintf("environment variable %s is not set", name))
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), problems
}

// validEnvName reports whether name is a portable environment variable name.
func validEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		letter := c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}
