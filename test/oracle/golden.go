package oracle

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// ExtractGolden returns the statements of router/testdata/classify.golden: one
// statement per line, Go-quoted when it starts with '"', each followed by a
// "-> class" line; '#' lines and blank lines are comments. The expected classes
// are not used: the server, not the table, is the judge here.
func ExtractGolden(src []byte) ([]Statement, error) {
	var out []Statement
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "-> "):
		case strings.HasPrefix(line, `"`):
			s, err := strconv.Unquote(line)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			out = append(out, Statement{SQL: s, Line: n})
		default:
			out = append(out, Statement{SQL: line, Line: n})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
