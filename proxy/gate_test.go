package proxy

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// TestWriteGate holds writes as a switchover does: a write outside a
// transaction waits at the gate and runs once the hold ends; a read goes on
// to its replica meanwhile; a session with a transaction open keeps going,
// and WaitQuiet waits for its transaction to end.
func TestWriteGate(t *testing.T) {
	fp := startFakeProxy(t, 1, nil)
	const (
		write = "INSERT INTO t VALUES (1)"
		read  = "SELECT * FROM t"
	)
	inTx := uint16(fakeIdle | mysql.SERVER_STATUS_IN_TRANS)
	fp.primary.setScript(func(_ *fakeConn, cmd fakeCommand) fakeReply {
		switch cmd.text {
		case write:
			return fakeOK{status: fakeIdle, affected: 1}
		case "START TRANSACTION":
			return fakeOK{status: inTx}
		case "INSERT INTO t VALUES (2)":
			return fakeOK{status: inTx, affected: 1}
		}
		return nil
	})
	fp.replicas[0].setScript(answer(read, rowsOf("a", "replica")))
	writer, reader, txn := fp.db(t, ""), fp.db(t, ""), fp.db(t, "")
	for _, db := range []interface{ PingContext(context.Context) error }{writer, reader, txn} {
		if err := db.PingContext(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := txn.Begin()
	if err != nil {
		t.Fatal(err)
	}

	release := fp.HoldWrites()
	defer release()
	done := make(chan error, 1)
	go func() {
		_, err := writer.Exec(write)
		done <- err
	}()
	if got := queryString(t, reader, read); got != "replica" {
		t.Errorf("a read while writes are held answered %q, want the replica's", got)
	}
	if _, err := tx.Exec("INSERT INTO t VALUES (2)"); err != nil {
		t.Errorf("a write inside an open transaction while writes are held: %v", err)
	}
	// The open transaction keeps WaitQuiet waiting.
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	err = fp.WaitQuiet(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "1 sessions") {
		t.Errorf("WaitQuiet with a transaction open = %v, want the deadline naming 1 session", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := fp.WaitQuiet(ctx); err != nil {
		t.Fatalf("WaitQuiet after the commit: %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("the write ran while writes were held (err %v)", err)
	default:
	}
	if fp.primary.receivedQuery(write) {
		t.Fatal("the primary received the held write")
	}
	release()
	if err := <-done; err != nil {
		t.Fatalf("the held write after the release: %v", err)
	}
	if !fp.primary.receivedQuery(write) {
		t.Error("the primary never received the write")
	}
}
