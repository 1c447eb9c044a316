package config

import (
	"errors"
	"fmt"
	"io"
)

// CheckFile is the body of `switchyard check-config FILE`. It loads path and
// writes "FILE: ok", or one line "FILE: problem" per problem, to w. It returns
// the process exit code: 0 when the file is valid, 1 otherwise.
func CheckFile(path string, w io.Writer) int {
	_, err := Load(path)
	if err == nil {
		fmt.Fprintf(w, "%s: ok\n", path)
		return 0
	}
	var errs Errors
	if !errors.As(err, &errs) {
		errs = Errors{{Msg: err.Error()}}
	}
	for _, e := range errs {
		fmt.Fprintf(w, "%s: %s\n", path, e.Error())
	}
	return 1
}
