#!/usr/bin/env python3
"""Drives the Flask inventory app (app.py) with Flask's test client, through
Switchyard, and prints a JSON report (apptrace.Trace) on stdout.

usage: run.py setup|app|reads

setup  creates the tables and triggers.
app    create, list, get, update, delete, a batch with savepoints, a bulk
       insert, raw SQL statistics and a counter incremented under a row lock;
       every request that writes reads its result back, and the following
       requests check it.
reads  requests that only read what app wrote.

The database is $SY_DB on $SY_HOST:$SY_PORT as $SY_USER/$SY_PASSWORD. Names are
prefixed with $SY_RUN. Requests run one after another, so SQLAlchemy's pool
hands every request the same connection: the whole script is one Switchyard
session, as the trace assumes.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

from apptrace import Trace  # noqa: E402
from app import create_app, init_db  # noqa: E402

RUN = os.environ.get("SY_RUN", "run")
URL = "mysql+pymysql://{user}:{password}@{host}:{port}/{db}?charset=utf8mb4".format(
    user=os.environ.get("SY_USER", "app"), password=os.environ.get("SY_PASSWORD", "app-secret"),
    host=os.environ.get("SY_HOST", "127.0.0.1"), port=os.environ.get("SY_PORT", "6033"),
    db=os.environ.get("SY_DB", "inventory"))


def n(name):
    return f"{RUN}-{name}"


class Client:
    """Sends requests and records the reads each response reports."""

    def __init__(self, tr):
        self.tr = tr
        self.app = create_app(URL)
        self.http = self.app.test_client()
        # PyMySQL runs with autocommit off: every statement is in a transaction.
        tr.in_tx, tr.autocommit = True, False

    def _send(self, method, path, body, status):
        resp = self.http.open(path, method=method, json=body)
        if resp.status_code != status:
            raise AssertionError(f"{method} {path}: status {resp.status_code}, want {status}: "
                                 f"{resp.get_data(as_text=True)[:2000]}")
        return resp.get_json()

    def _reads(self, method, path, data):
        for r in data.get("reads", []):
            self.tr.read(f"{method} {path}: {r['what']}", r["server_id"], r["written_by"],
                         locking=r["locking"], tx_wrote=r["after_write_in_tx"])
        return data

    def read(self, method, path, body=None, status=200):
        return self._reads(method, path, self._send(method, path, body, status))

    def write(self, method, path, body=None, status=200):
        with self.tr.write(f"{method} {path}"):
            data = self._send(method, path, body, status)
        return self._reads(method, path, data)


def setup(tr):
    app = create_app(URL)
    with tr.write("create tables and triggers"):
        init_db(app.config["ENGINE"])


def scenario(tr):
    c = Client(tr)
    model = {}  # name -> qty, what the database must hold for this run
    ids = {}

    def listed():
        items = c.read("GET", f"/items?prefix={RUN}-")["items"]
        return {i["name"]: i["qty"] for i in items}

    for i in range(5):
        name = n(f"item-{i}")
        got = c.write("POST", "/items", {"name": name, "qty": i + 1}, status=201)["item"]
        tr.check(f"{name} read back after insert", got and (got["name"], got["qty"]), (name, i + 1))
        model[name] = i + 1
        ids[name] = got["id"]
    tr.check("list after inserts", listed(), model)

    first, second = n("item-0"), n("item-1")
    got = c.write("PUT", f"/items/{ids[first]}", {"qty": 42})
    tr.check("update rowcount", got["updated"], 1)
    tr.check("item read back after update", got["item"]["qty"], 42)
    model[first] = 42
    tr.check("get after update", c.read("GET", f"/items/{ids[first]}")["item"]["qty"], 42)

    got = c.write("DELETE", f"/items/{ids[second]}")
    tr.check("delete rowcount", got["deleted"], 1)
    tr.check("item read back after delete", got["item"], None)
    del model[second]
    tr.check("get after delete", c.read("GET", f"/items/{ids[second]}", status=404)["item"], None)

    batch = [{"name": n("batch-0"), "qty": 1}, {"name": n("batch-bad"), "qty": -1},
             {"name": n("item-2"), "qty": 7}, {"name": n("batch-1"), "qty": 2}]
    got = c.write("POST", "/items/batch", {"items": batch})
    tr.check("batch created", got["created"], [n("batch-0"), n("batch-1")])
    tr.check("batch rejected", got["rejected"], [n("batch-bad"), n("item-2")])
    tr.check("batch seen in its transaction", got["seen_in_tx"], 3)  # item-2 existed before
    model[n("batch-0")], model[n("batch-1")] = 1, 2
    tr.check("list after batch", listed(), model)

    bulk = [{"name": n(f"bulk-{i}"), "qty": i} for i in range(50)]
    got = c.write("POST", "/items/bulk", {"items": bulk}, status=201)
    tr.check("bulk inserted", got["inserted"], 50)
    model.update({b["name"]: b["qty"] for b in bulk})
    st = c.read("GET", f"/stats?prefix={RUN}-")
    tr.check("stats after bulk insert", (st["count"], st["total"]), (len(model), sum(model.values())))

    counter = n("hits")
    c.write("POST", "/counters", {"name": counter}, status=201)
    values = [c.write("POST", f"/counters/{counter}/incr")["value"] for _ in range(20)]
    tr.check("counter increments", values, list(range(1, 21)))
    tr.check("counter after increments", c.read("GET", f"/counters/{counter}")["value"], 20)

    tr.check("list at the end", listed(), model)
    tr.info.update(items=len(model), qty=sum(model.values()), counter=20)


def reads(tr):
    c = Client(tr)
    items = c.read("GET", f"/items?prefix={RUN}-")["items"]
    for it in items[:6]:
        got = c.read("GET", f"/items/{it['id']}")["item"]
        tr.check(f"{it['name']} read alone", got, it)
    c.read("GET", "/items/999999999", status=404)
    st = c.read("GET", f"/stats?prefix={RUN}-")
    tr.check("stats agree with the list", (st["count"], st["total"]),
             (len(items), sum(i["qty"] for i in items)))
    counter = c.read("GET", f"/counters/{n('hits')}")["value"]
    tr.info.update(items=st["count"], qty=st["total"], counter=counter)


PHASES = {"setup": setup, "app": scenario, "reads": reads}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in PHASES:
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(PHASES)}")
    Trace("flask", sys.argv[1]).run(PHASES[sys.argv[1]])
