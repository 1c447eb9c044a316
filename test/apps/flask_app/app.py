"""A small inventory service: Flask + SQLAlchemy over PyMySQL.

Every response lists the reads that produced it, each with the @@server_id
that the reading statement itself selected, so a client can tell which server
answered. Rows carry written_by, which triggers set to the @@server_id of the
server that ran the INSERT or UPDATE.

SQLAlchemy runs PyMySQL connections with autocommit off, so every request is a
transaction of its own: it ends with COMMIT, or with the ROLLBACK the
connection pool issues when the connection comes back.
"""
from flask import Flask, jsonify, request
from sqlalchemy import Column, Integer, String, create_engine, delete, func, insert, literal_column, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, declarative_base

Base = declarative_base()


class Item(Base):
    __tablename__ = "items"
    id = Column(Integer, primary_key=True)
    name = Column(String(100), nullable=False, unique=True)
    qty = Column(Integer, nullable=False, default=0)
    written_by = Column(Integer, nullable=False, default=0)


class Counter(Base):
    __tablename__ = "counters"
    name = Column(String(100), primary_key=True)
    value = Column(Integer, nullable=False, default=0)
    written_by = Column(Integer, nullable=False, default=0)


def _sid():
    return literal_column("@@server_id").label("sid")


# One row even when the item does not exist, so that a miss also says which
# server answered.
ITEM_BY_ID = text(
    "SELECT @@server_id AS sid, i.id, i.name, i.qty, i.written_by "
    "FROM (SELECT 1) AS one LEFT JOIN items AS i ON i.id = :id")


def init_db(engine):
    """Creates the tables and the written_by triggers."""
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        for table in ("items", "counters"):
            for when, suffix in (("INSERT", "bi"), ("UPDATE", "bu")):
                conn.execute(text(
                    f"CREATE TRIGGER IF NOT EXISTS {table}_{suffix} BEFORE {when} ON {table} "
                    f"FOR EACH ROW SET NEW.written_by = @@server_id"))


def _item(i):
    return {"id": i.id, "name": i.name, "qty": i.qty, "written_by": i.written_by}


def _read(reads, what, server_id, written_by=(), after_write=False, locking=False):
    reads.append({"what": what, "server_id": server_id, "written_by": list(written_by),
                  "after_write_in_tx": after_write, "locking": locking})


def _get_item(s, reads, what, item_id):
    row = s.execute(ITEM_BY_ID, {"id": item_id}).one()
    if row.id is None:
        _read(reads, what, row.sid)
        return None
    _read(reads, what, row.sid, [row.written_by])
    return {"id": row.id, "name": row.name, "qty": row.qty, "written_by": row.written_by}


def create_app(url):
    engine = create_engine(url, future=True)
    app = Flask(__name__)
    app.config["ENGINE"] = engine

    @app.post("/items")
    def create_item():
        body = request.get_json()
        reads = []
        with Session(engine) as s:
            item = Item(name=body["name"], qty=body["qty"])
            s.add(item)
            s.flush()
            item_id = item.id
            s.commit()
            return jsonify(item=_get_item(s, reads, "item after insert", item_id), reads=reads), 201

    @app.get("/items")
    def list_items():
        prefix = request.args.get("prefix", "")
        reads = []
        with Session(engine) as s:
            rows = s.execute(select(Item, _sid()).where(Item.name.startswith(prefix)).order_by(Item.id)).all()
            _read(reads, "list items", rows[0].sid if rows else None, [r.Item.written_by for r in rows])
            return jsonify(items=[_item(r.Item) for r in rows], reads=reads)

    @app.get("/items/<int:item_id>")
    def get_item(item_id):
        reads = []
        with Session(engine) as s:
            item = _get_item(s, reads, "get item", item_id)
            return jsonify(item=item, reads=reads), 200 if item else 404

    @app.put("/items/<int:item_id>")
    def update_item(item_id):
        body = request.get_json()
        reads = []
        with Session(engine) as s:
            res = s.execute(update(Item).where(Item.id == item_id).values(qty=body["qty"]))
            s.commit()
            item = _get_item(s, reads, "item after update", item_id)
            return jsonify(updated=res.rowcount, item=item, reads=reads)

    @app.delete("/items/<int:item_id>")
    def delete_item(item_id):
        reads = []
        with Session(engine) as s:
            res = s.execute(delete(Item).where(Item.id == item_id))
            s.commit()
            item = _get_item(s, reads, "item after delete", item_id)
            return jsonify(deleted=res.rowcount, item=item, reads=reads)

    @app.post("/items/batch")
    def batch():
        """Adds items one savepoint each; an invalid or duplicate item rolls
        back only its own savepoint."""
        reads, created, rejected = [], [], []
        with Session(engine) as s:
            for it in request.get_json()["items"]:
                try:
                    with s.begin_nested():
                        s.add(Item(name=it["name"], qty=it["qty"]))
                        s.flush()
                        if it["qty"] < 0:
                            raise ValueError("negative quantity")
                    created.append(it["name"])
                except (ValueError, IntegrityError):
                    rejected.append(it["name"])
            names = [it["name"] for it in request.get_json()["items"]]
            row = s.execute(select(func.count(Item.id), _sid()).where(Item.name.in_(names))).one()
            _read(reads, "batch items before commit", row.sid, after_write=bool(names))
            s.commit()
            return jsonify(created=created, rejected=rejected, seen_in_tx=row[0], reads=reads)

    @app.post("/items/bulk")
    def bulk():
        rows = [{"name": it["name"], "qty": it["qty"]} for it in request.get_json()["items"]]
        reads = []
        with Session(engine) as s:
            s.execute(insert(Item), rows)  # executemany: one multi-row INSERT
            s.commit()
            got = s.execute(select(Item.written_by, _sid()).where(Item.name.in_([r["name"] for r in rows]))).all()
            _read(reads, "bulk items after commit", got[0].sid if got else None, [g.written_by for g in got])
            return jsonify(inserted=len(got), reads=reads), 201

    @app.get("/stats")
    def stats():
        prefix = request.args.get("prefix", "")
        reads = []
        with Session(engine) as s:
            row = s.execute(text(
                "SELECT COUNT(*) AS n, COALESCE(SUM(qty), 0) AS total, @@server_id AS sid "
                "FROM items WHERE name LIKE :p"), {"p": prefix + "%"}).one()
            _read(reads, "stats", row.sid)
            return jsonify(count=row.n, total=int(row.total), reads=reads)

    @app.post("/counters")
    def create_counter():
        with Session(engine) as s:
            s.add(Counter(name=request.get_json()["name"], value=0))
            s.commit()
            return jsonify(ok=True), 201

    @app.post("/counters/<name>/incr")
    def incr(name):
        """Increments a counter under a row lock: SELECT ... FOR UPDATE, then
        UPDATE, in one transaction."""
        reads = []
        with Session(engine) as s:
            row = s.execute(select(Counter, _sid()).where(Counter.name == name).with_for_update()).one()
            _read(reads, "counter for update", row.sid, [row.Counter.written_by], locking=True)
            row.Counter.value += 1
            s.commit()
            got = s.execute(select(Counter.value, Counter.written_by, _sid()).where(Counter.name == name)).one()
            _read(reads, "counter after commit", got.sid, [got.written_by])
            return jsonify(value=got.value, reads=reads)

    @app.get("/counters/<name>")
    def get_counter(name):
        reads = []
        with Session(engine) as s:
            got = s.execute(select(Counter.value, Counter.written_by, _sid()).where(Counter.name == name)).one()
            _read(reads, "get counter", got.sid, [got.written_by])
            return jsonify(value=got.value, reads=reads)

    return app
