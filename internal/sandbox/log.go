package sandbox

import (
	"bytes"
	"fmt"
	"io"
	"sync"
)

// logSink serialises writes from several servers and the sandbox itself to one writer.
type logSink struct {
	mu sync.Mutex
	w  io.Writer
}

// prefixed returns a writer that writes whole lines to the sink, each starting with
// "[name] ". Partial lines wait for their newline.
func (l *logSink) prefixed(name string) io.Writer {
	return &lineWriter{sink: l, prefix: []byte("[" + name + "] ")}
}

// printf writes one progress line.
func (l *logSink) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "sandbox: "+format+"\n", args...)
}

type lineWriter struct {
	sink   *logSink
	prefix []byte
	buf    []byte // an unfinished line; guarded by sink.mu
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.sink.mu.Lock()
	defer w.sink.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := append(append([]byte(nil), w.prefix...), w.buf[:i+1]...)
		w.buf = w.buf[i+1:]
		if _, err := w.sink.w.Write(line); err != nil {
			return len(p), nil // a broken log must not stall the server writing to it
		}
	}
	return len(p), nil
}
