package config

import (
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The decoder walks the yaml.Node tree alongside the Go value instead of
// calling yaml's own Decode on the whole document, for three reasons:
// yaml.Node.Decode has no strict mode; yaml's type errors carry a line but no
// field path; and each backends[] entry needs its defaults (weight 1) before
// it is decoded, which a plain Decode cannot give a slice element.
//
// Rules: a key that names no field is an error, as is a key given twice; a
// null value (`tls:` with nothing after it) keeps the default; a sequence
// replaces the default slice; YAML anchors, aliases and "<<" merge keys work.

// maxNodes bounds the nodes one decode visits. Aliases and merge keys can
// make a small document expand exponentially; a real configuration visits a
// few hundred nodes.
const maxNodes = 100_000

type decoder struct {
	errs   *Errors
	exp    expansion
	budget int
}

// visit charges one node against the budget and reports whether decoding may
// go on.
func (d *decoder) visit() bool {
	d.budget--
	if d.budget == -1 {
		d.errs.add("", "document is too large or uses too many aliases (more than %d nodes)", maxNodes)
	}
	return d.budget >= 0
}

// decode stores n into v, which must be addressable, reporting problems under
// path.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if !d.visit() {
		return
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return
		}
		n = n.Alias
	}
	if d.exp.failed[n] || (isNull(n) && !d.exp.changed[n]) {
		return
	}
	if u, ok := v.Addr().Interface().(yaml.Unmarshaler); ok {
		if err := u.UnmarshalYAML(n); err != nil {
			d.errs.add(path, "%v (line %d)", err, n.Line)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.mismatch(path, "a mapping", n)
			return
		}
		d.mapping(n, v, path, structFields(v.Type()), map[string]int{})
	case reflect.Slice:
		d.sequence(n, v, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.mismatch(path, "a string", n)
			return
		}
		v.SetString(n.Value)
	case reflect.Int:
		d.scalar(n, v, path, "!!int", "an integer")
	case reflect.Bool:
		d.scalar(n, v, path, "!!bool", "true or false")
	default:
		// A field type added to Config without support here.
		panic("config: cannot decode into " + v.Type().String())
	}
}

// mapping decodes the pairs of n into the struct v. seen holds the line of
// every key already set directly in this mapping, to catch duplicates.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string, fields map[string]int, seen map[string]int) {
	// Merged keys first, so that the mapping's own keys override them.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if isMergeKey(n.Content[i]) {
			d.merge(n.Content[i+1], v, path, fields)
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if isMergeKey(k) {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.errs.add(path, "mapping key must be a string, got %s (line %d)", kindName(k), k.Line)
			continue
		}
		p := field(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.errs.add(p, "duplicate key (line %d, first at line %d)", k.Line, first)
			continue
		}
		seen[k.Value] = k.Line
		idx, ok := fields[k.Value]
		if !ok {
			d.errs.add(p, "unknown field (line %d)", k.Line)
			continue
		}
		d.decode(val, v.Field(idx), p)
	}
}

// merge applies the value of a "<<" key: a mapping, or a sequence of
// mappings of which earlier ones win.
func (d *decoder) merge(n *yaml.Node, v reflect.Value, path string, fields map[string]int) {
	if !d.visit() {
		return
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		d.mapping(n, v, path, fields, map[string]int{})
	case yaml.SequenceNode:
		for i := len(n.Content) - 1; i >= 0; i-- {
			m := n.Content[i]
			if m.Kind == yaml.AliasNode && m.Alias != nil {
				m = m.Alias
			}
			if m.Kind != yaml.MappingNode {
				d.mismatch(field(path, "<<"), "a mapping", m)
				continue
			}
			d.merge(m, v, path, fields)
		}
	default:
		d.mismatch(field(path, "<<"), "a mapping or a sequence of mappings", n)
	}
}

// sequence decodes n into the slice v, replacing its contents.
func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.mismatch(path, "a sequence", n)
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, c := range n.Content {
		e := s.Index(i)
		if def, ok := e.Addr().Interface().(interface{ setDefaults() }); ok {
			def.setDefaults()
		}
		d.decode(c, e, index(path, i))
	}
	v.Set(s)
}

// scalar decodes a non-string scalar that YAML resolves to tag. Matching the
// tag first keeps yaml from truncating 1.5 to 1 or reading "yes" as true.
func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path, tag, want string) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != tag {
		d.mismatch(path, want, n)
		return
	}
	p := reflect.New(v.Type())
	if err := n.Decode(p.Interface()); err != nil {
		d.mismatch(path, want, n)
		return
	}
	v.Set(p.Elem())
}

func (d *decoder) mismatch(path, want string, n *yaml.Node) {
	d.errs.add(path, "expected %s, got %s (line %d)", want, kindName(n), n.Line)
}

// structFields maps the YAML name of each field of t to its index.
func structFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			m[name] = i
		}
	}
	return m
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func isMergeKey(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!merge"
}

// kindName describes n for an error message.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a sequence"
	case yaml.ScalarNode:
		if isNull(n) {
			return "an empty value"
		}
		return fmt.Sprintf("%q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "nothing"
}
