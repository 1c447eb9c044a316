"""Trace: what a scripted application did, written as JSON for the Go tests.

The Go tests decide where each read had to run from three facts the script
records about it, and from the proxy's configuration:

- whether it ran inside a transaction that had already written (in_tx,
  tx_wrote) and whether autocommit was off (autocommit);
- whether it was a locking read (SELECT ... FOR UPDATE);
- since_write_ms: an upper bound of the time between the start of the
  session's latest write and the read. Switchyard starts its read-your-writes
  window when it receives a write, which is after the client started it, and
  decides a read's route before the client has its answer, so the window the
  proxy saw is never longer than this bound. None when the session has not
  written (or committed) anything yet.

Every write a script makes through its connection must run inside
Trace.write (or inside Trace.transaction, whose commit counts as a write when
the transaction wrote), or the bounds above would not hold.

Checks are the application's own verdicts on what it read back; the Go tests
require every one to pass.
"""

import json
import sys
import time
import traceback
from contextlib import contextmanager


def _ms(seconds):
    return round(seconds * 1000.0, 3)


class Trace:
    def __init__(self, app, phase):
        self.app = app
        self.phase = phase
        self.events = []
        self.last_write_start = None  # time.monotonic() when the latest write began
        self.session_wrote = False  # any write or commit since the session began
        self.in_tx = False
        self.tx_wrote = False
        self.autocommit = True
        self.info = {}

    @contextmanager
    def write(self, name):
        """Times a block of statements that write (on success only)."""
        start = time.monotonic()
        yield
        self.last_write_start = start
        self.session_wrote = True
        if self.in_tx:
            self.tx_wrote = True
        self.events.append({"kind": "write", "name": name, "ms": _ms(time.monotonic() - start)})

    @contextmanager
    def transaction(self, name):
        """Marks an explicit transaction. Use it inside the framework's own
        transaction block, so that this block ends before the COMMIT starts."""
        self.in_tx, self.tx_wrote, self.autocommit = True, False, False
        ok = False
        try:
            yield
            ok = True
        finally:
            wrote = self.tx_wrote
            self.in_tx, self.tx_wrote, self.autocommit = False, False, True
            if ok:
                # The COMMIT follows at once; Switchyard counts it as a write
                # when it runs on the primary.
                self.session_wrote = True
                if wrote:
                    self.last_write_start = time.monotonic()
            self.events.append({"kind": "transaction", "name": name, "committed": ok, "wrote": wrote})

    def read(self, name, server_id, written_by=None, locking=False, value=None, tx_wrote=None):
        """Records a read that has just returned; server_id is @@server_id
        as the same statement computed it. tx_wrote, when given, overrides
        what the trace knows about the current transaction."""
        end = time.monotonic()
        ev = {
            "kind": "read",
            "name": name,
            "server_id": server_id,
            "in_tx": self.in_tx,
            "tx_wrote": self.tx_wrote if tx_wrote is None else tx_wrote,
            "autocommit": self.autocommit,
            "locking": locking,
            "session_wrote": self.session_wrote,
            "since_write_ms": None if self.last_write_start is None else _ms(end - self.last_write_start),
            "written_by": list(written_by or []),
        }
        if value is not None:
            ev["value"] = value
        self.events.append(ev)
        return ev

    def check(self, name, got, want):
        """Records whether what the application read back is what it expected."""
        ok = got == want
        self.events.append({"kind": "check", "name": name, "ok": ok, "got": repr(got), "want": repr(want)})
        return ok

    def run(self, fn):
        """Runs fn(self), prints the report as JSON on stdout and exits:
        status 0 when fn returned, 1 when it raised."""
        error = None
        try:
            fn(self)
        except BaseException:  # the report must say what went wrong
            error = traceback.format_exc()
        report = {"app": self.app, "phase": self.phase, "ok": error is None, "error": error,
                  "info": self.info, "events": self.events}
        json.dump(report, sys.stdout, indent=1, default=str)
        sys.stdout.write("\n")
        sys.stdout.flush()
        sys.exit(0 if error is None else 1)
