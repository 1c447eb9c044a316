#!/usr/bin/env python3
"""Drives the Django shop through Switchyard and prints a JSON report
(apptrace.Trace) on stdout.

usage: run.py migrate|crud|reads|slowwrite

migrate  applies every migration (contenttypes, auth, shop with its triggers).
crud     one session: create/read/update/delete, atomic() with nested
         savepoints and inner rollbacks, select_for_update() (with a second
         connection proving the lock is held), bulk_create/bulk_update, raw SQL
         through connection.cursor() and Manager.raw(), get_or_create and
         update_or_create. After every write the session reads it back.
reads    a session that only reads what crud wrote, ending with a read-only
         atomic() block.
slowwrite  one session: an UPDATE that runs for $SY_SLOW_SECONDS (longer
         than Switchyard's session window), then at once a read of its row.

Every traced read selects @@server_id in the same statement, so the report
says which server ran it. Names are prefixed with $SY_RUN so that several runs
can share a database.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shopsite.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import DatabaseError, connection, transaction  # noqa: E402
from django.db.migrations.recorder import MigrationRecorder  # noqa: E402
from django.db.models import Count, F, IntegerField, Max, Sum  # noqa: E402
from django.db.models.expressions import RawSQL  # noqa: E402
from django.db.models.functions import Coalesce  # noqa: E402

from apptrace import Trace  # noqa: E402
from shop.models import Customer, Order  # noqa: E402

RUN = os.environ.get("SY_RUN", "run")

# MariaDB's "Lock wait timeout exceeded" (what NOWAIT raises) and MySQL's
# ER_LOCK_NOWAIT.
LOCKED_ERRORS = {1205, 3572}


def n(name):
    return f"{RUN}-{name}"


def sid():
    return RawSQL("@@server_id", [], output_field=IntegerField())


def sid_agg():
    """@@server_id in an aggregate query, also when no row matches."""
    return Coalesce(Max(sid()), sid())


class Rollback(Exception):
    pass


def customer(tr, label, name, locking=False):
    """Reads one customer (None when absent) and records where it ran."""
    qs = Customer.objects.filter(name=n(name)).annotate(sid=sid())
    if locking:
        qs = qs.select_for_update()
    rows = list(qs)
    if not rows:
        # No row, so no @@server_id: ask again in a form that always returns
        # one, under the same routing state.
        agg = Customer.objects.filter(name=n(name)).aggregate(k=Count("id"), sid=sid_agg())
        tr.read(label + " (absent)", agg["sid"], locking=locking, value=agg["k"])
        return None
    c = rows[0]
    tr.read(label, c.sid, [c.written_by], locking=locking, value=c.balance)
    return c


def balance(tr, label, name):
    c = customer(tr, label, name)
    return None if c is None else c.balance


def count(tr, label, qs, **aggs):
    """Counts qs (with optional extra aggregates) and records where it ran."""
    agg = qs.aggregate(k=Count("id"), sid=sid_agg(), **aggs)
    tr.read(label, agg.pop("sid"), value=agg)
    return agg


def other_lock(name):
    """Tries to lock a customer from a second connection, without waiting:
    "acquired" or "locked"."""
    try:
        with transaction.atomic(using="other"):
            list(Customer.objects.using("other").select_for_update(nowait=True).filter(name=name))
        return "acquired"
    except DatabaseError as e:
        code = e.args[0] if e.args else None
        if code in LOCKED_ERRORS:
            return "locked"
        raise


def migrate(tr):
    with tr.write("migrate"):
        call_command("migrate", interactive=False, verbosity=0)
    rows = list(MigrationRecorder.Migration.objects.filter(app="shop").annotate(sid=sid()).order_by("name"))
    tr.read("django_migrations after migrate", rows[0].sid if rows else None)
    tr.check("shop migrations applied", [r.name for r in rows], ["0001_initial", "0002_written_by_triggers"])
    with connection.cursor() as cur:
        cur.execute("SELECT COUNT(*), @@server_id FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()")
        k, server = cur.fetchone()
    tr.read("triggers after migrate", server)
    tr.check("triggers created", k, 4)
    tr.info["migrations"] = MigrationRecorder.Migration.objects.count()


def crud(tr):
    # Create, then read back.
    with tr.write("create alice and bob"):
        Customer.objects.create(name=n("alice"), balance=100)
        Customer.objects.create(name=n("bob"), balance=50)
    a = customer(tr, "alice after create", "alice")
    tr.check("alice created", a and (a.name, a.balance), (n("alice"), 100))
    tr.check("bob created", balance(tr, "bob after create", "bob"), 50)

    # Update with save() and with an F() expression.
    a.balance = 120
    with tr.write("save alice"):
        a.save(update_fields=["balance"])
    tr.check("alice saved", balance(tr, "alice after save", "alice"), 120)
    with tr.write("update bob with F()"):
        updated = Customer.objects.filter(name=n("bob")).update(balance=F("balance") + 5)
    tr.check("bob rows updated", updated, 1)
    tr.check("bob updated", balance(tr, "bob after update", "bob"), 55)

    # A related row, read back through the relation.
    with tr.write("create order"):
        Order.objects.create(customer=a, item="book", qty=2)
    agg = count(tr, "alice's orders after create", Order.objects.filter(customer__name=n("alice")), q=Sum("qty"))
    tr.check("alice's orders", agg, {"k": 1, "q": 2})
    o = Order.objects.select_related("customer").annotate(sid=sid()).get(customer__name=n("alice"), item="book")
    tr.read("order with select_related", o.sid, [o.written_by, o.customer.written_by])
    tr.check("order's customer", (o.qty, o.customer.balance), (2, 120))

    # Delete (Django's collector runs it in a transaction of its own).
    with tr.write("create temp"):
        t = Customer.objects.create(name=n("temp"), balance=1)
    tr.check("temp created", balance(tr, "temp after create", "temp"), 1)
    with tr.write("delete temp"):
        deleted, _ = t.delete()
    tr.check("temp rows deleted", deleted, 1)
    tr.check("temp deleted", count(tr, "temp after delete", Customer.objects.filter(name=n("temp")))["k"], 0)

    # A transaction with row locks and nested savepoints.
    tr.check("alice unlocked before the transaction", other_lock(n("alice")), "acquired")
    with transaction.atomic():
        with tr.transaction("transfer"):
            a = customer(tr, "lock alice", "alice", locking=True)
            tr.check("alice locked by the transaction", other_lock(n("alice")), "locked")
            a.balance -= 30
            with tr.write("debit alice"):
                a.save(update_fields=["balance"])
            b = customer(tr, "lock bob", "bob", locking=True)
            b.balance += 30
            with tr.write("credit bob"):
                b.save(update_fields=["balance"])
            tr.check("alice in the transaction", balance(tr, "alice after debit", "alice"), 90)

            try:
                with transaction.atomic():  # savepoint, rolled back
                    with tr.write("ghost customer and order"):
                        g = Customer.objects.create(name=n("ghost"), balance=1)
                        Order.objects.create(customer=g, item=n("ghost-order"), qty=1)
                    tr.check("ghost inside its savepoint", balance(tr, "ghost inside savepoint", "ghost"), 1)
                    raise Rollback()
            except Rollback:
                pass
            tr.check("ghost rolled back to the savepoint",
                     count(tr, "ghost after savepoint rollback", Customer.objects.filter(name=n("ghost")))["k"], 0)

            with transaction.atomic():  # savepoint, released
                with tr.write("create carol"):
                    Customer.objects.create(name=n("carol"), balance=10)
                with transaction.atomic():  # nested savepoint, rolled back
                    with tr.write("raise carol"):
                        Customer.objects.filter(name=n("carol")).update(balance=999)
                    tr.check("carol inside the inner savepoint", balance(tr, "carol in inner savepoint", "carol"), 999)
                    transaction.set_rollback(True)
                tr.check("carol after the inner rollback", balance(tr, "carol after inner rollback", "carol"), 10)
            total = count(tr, "balances in the transaction",
                          Customer.objects.filter(name__in=[n("alice"), n("bob"), n("carol")]), s=Sum("balance"))
            tr.check("balances in the transaction", total, {"k": 3, "s": 90 + 85 + 10})
    tr.check("alice unlocked after commit", other_lock(n("alice")), "acquired")
    tr.check("alice after commit", balance(tr, "alice after commit", "alice"), 90)
    tr.check("bob after commit", balance(tr, "bob after commit", "bob"), 85)
    tr.check("carol after commit", balance(tr, "carol after commit", "carol"), 10)
    tr.check("ghost after commit", count(tr, "ghost after commit", Customer.objects.filter(name=n("ghost")))["k"], 0)
    tr.check("ghost order after commit",
             count(tr, "ghost order after commit", Order.objects.filter(item=n("ghost-order")))["k"], 0)

    # A transaction that fails as a whole.
    try:
        with transaction.atomic():
            with tr.transaction("failed transfer"):
                with tr.write("debit bob"):
                    Customer.objects.filter(name=n("bob")).update(balance=F("balance") - 1000)
                tr.check("bob overdrawn in the transaction", balance(tr, "bob overdrawn", "bob"), 85 - 1000)
                raise Rollback()
    except Rollback:
        pass
    tr.check("bob after the rolled back transaction", balance(tr, "bob after rollback", "bob"), 85)

    # Bulk operations. MariaDB returns the new ids with INSERT ... RETURNING;
    # MySQL has no RETURNING, so Django leaves them unset and the rows are
    # read back (through Switchyard: the session must see its own insert).
    b = Customer.objects.get(name=n("bob"))
    with tr.write("bulk_create orders"):
        objs = Order.objects.bulk_create([Order(customer=b, item=f"bulk-{i}", qty=i) for i in range(100)])
    returning = connection.features.can_return_rows_from_bulk_insert
    tr.check("bulk_create set primary keys", all(o.pk is not None for o in objs), returning)
    bulk = Order.objects.filter(customer=b, item__startswith="bulk-")
    tr.check("bulk_create rows", count(tr, "orders after bulk_create", bulk, q=Sum("qty")),
             {"k": 100, "q": sum(range(100))})
    if not returning:
        objs = list(bulk.order_by("pk"))
        tr.check("bulk_create rows read back", len(objs), 100)
    for o in objs:
        o.qty *= 2
    with tr.write("bulk_update orders"):
        Order.objects.bulk_update(objs, ["qty"], batch_size=40)
    tr.check("bulk_update rows", count(tr, "orders after bulk_update", bulk, q=Sum("qty")),
             {"k": 100, "q": 2 * sum(range(100))})
    rows = list(bulk.annotate(sid=sid()).values_list("written_by", "sid"))
    tr.read("bulk orders' writers", rows[0][1], [r[0] for r in rows])

    # Raw SQL through the connection's cursor and Manager.raw().
    with connection.cursor() as cur:
        with tr.write("raw insert"):
            cur.execute("INSERT INTO shop_customer (name, balance, written_by) VALUES (%s, %s, 0)", [n("dave"), 7])
        cur.execute("SELECT balance, written_by, @@server_id FROM shop_customer WHERE name = %s", [n("dave")])
        bal, wb, server = cur.fetchone()
        tr.read("raw select after raw insert", server, [wb], value=bal)
        tr.check("raw insert", bal, 7)
        with tr.write("raw update"):
            cur.execute("UPDATE shop_customer SET balance = balance + 1 WHERE name = %s", [n("dave")])
            tr.check("raw update rowcount", cur.rowcount, 1)
    rows = list(Customer.objects.raw(
        "SELECT id, name, balance, written_by, @@server_id AS sid FROM shop_customer WHERE name = %s", [n("dave")]))
    tr.read("Manager.raw after raw update", rows[0].sid, [rows[0].written_by], value=rows[0].balance)
    tr.check("raw update", rows[0].balance, 8)

    # get_or_create and update_or_create (a SELECT ... FOR UPDATE in atomic()).
    with tr.write("get_or_create erin"):
        _, created = Customer.objects.get_or_create(name=n("erin"), defaults={"balance": 5})
    tr.check("erin created", created, True)
    _, created = Customer.objects.get_or_create(name=n("erin"), defaults={"balance": 6})  # a read
    tr.check("erin found", created, False)
    with tr.write("update_or_create erin"):
        _, created = Customer.objects.update_or_create(name=n("erin"), defaults={"balance": 9})
    tr.check("erin updated, not created", created, False)
    tr.check("erin after update_or_create", balance(tr, "erin after update_or_create", "erin"), 9)

    rows = list(Customer.objects.filter(name__startswith=RUN + "-").annotate(sid=sid()).order_by("name"))
    tr.read("all customers at the end", rows[0].sid, [r.written_by for r in rows])
    tr.check("customers at the end", [(r.name, r.balance) for r in rows],
             [(n("alice"), 90), (n("bob"), 85), (n("carol"), 10), (n("dave"), 8), (n("erin"), 9)])


def reads(tr):
    rows = list(Customer.objects.filter(name__startswith=RUN + "-").annotate(sid=sid()).order_by("name"))
    tr.read("list customers", rows[0].sid if rows else None, [r.written_by for r in rows], value=len(rows))
    for r in rows:
        name = r.name[len(RUN) + 1:]
        tr.check(f"{name} read alone", balance(tr, f"get {name}", name), r.balance)
    agg = count(tr, "orders", Order.objects.filter(customer__name__startswith=RUN + "-"), q=Sum("qty"))
    pre = list(Customer.objects.filter(name__startswith=RUN + "-").annotate(sid=sid()).prefetch_related("orders"))
    tr.read("customers with prefetched orders", pre[0].sid if pre else None)
    tr.check("prefetched orders", sum(len(c.orders.all()) for c in pre), agg["k"])
    with connection.cursor() as cur:
        cur.execute("SELECT COUNT(*), COALESCE(SUM(balance), 0), @@server_id FROM shop_customer WHERE name LIKE %s",
                    [RUN + "-%"])
        k, total, server = cur.fetchone()
    tr.read("raw count", server, value=[k, int(total)])
    tr.check("raw count", k, len(rows))
    raw = list(Customer.objects.raw("SELECT id, name, @@server_id AS sid FROM shop_customer WHERE name LIKE %s",
                                    [RUN + "-%"]))
    tr.read("Manager.raw list", raw[0].sid if raw else None, value=len(raw))
    tr.info.update(customers=k, balance=int(total), orders=agg["k"], qty=agg["q"] or 0)

    # A transaction that only reads: on the primary when autocommit=0 sends
    # everything there, on replicas with implicit_transactions: lazy.
    with transaction.atomic():
        with tr.transaction("read-only transaction"):
            for r in rows[:2]:
                name = r.name[len(RUN) + 1:]
                tr.check(f"{name} in a read-only transaction", balance(tr, f"get {name} in transaction", name),
                         r.balance)
            count(tr, "orders in transaction", Order.objects.filter(customer__name__startswith=RUN + "-"))


def slowwrite(tr):
    with tr.write("create slow"):
        Customer.objects.create(name=n("slow"), balance=1)
    tr.check("slow created", balance(tr, "slow after create", "slow"), 1)
    seconds = float(os.environ.get("SY_SLOW_SECONDS", "1.5"))
    with connection.cursor() as cur:
        with tr.write("slow update"):
            # SLEEP runs once: the unique index finds the one row.
            cur.execute("UPDATE shop_customer SET balance = balance + 1 WHERE name = %s AND SLEEP(%s) = 0",
                        [n("slow"), seconds])
            tr.check("slow update rowcount", cur.rowcount, 1)
    tr.check("read right after the slow update", balance(tr, "slow after slow update", "slow"), 2)


PHASES = {"migrate": migrate, "crud": crud, "reads": reads, "slowwrite": slowwrite}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in PHASES:
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(PHASES)}")
    Trace("django", sys.argv[1]).run(PHASES[sys.argv[1]])
