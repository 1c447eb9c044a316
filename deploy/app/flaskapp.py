"""A small Flask app that records visits in MariaDB through Switchyard.

Every response names the application server that handled the request and the
database server (@@server_id, @@hostname) that answered the query, so the
end-to-end tests can see where reads and writes went.
"""

import pymysql
from flask import Flask, jsonify, request

import db

app = Flask(__name__)

# One statement, so the server that reports itself is the one that looked for
# the row; the outer join returns that report even when the row is missing.
VISIT_QUERY = (
    "SELECT @@server_id, @@hostname, v.id, v.app_server, v.framework, v.note"
    " FROM (SELECT 1) AS one LEFT JOIN visits AS v ON v.id = %s"
)


def _server(row):
    return {"server_id": int(row[0]), "hostname": row[1]}


@app.get("/")
def index():
    """A read: counts the visits on whichever server answers."""
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT @@server_id, @@hostname, COUNT(*) FROM visits")
            row = cur.fetchone()
    finally:
        conn.close()
    return jsonify(app_server=db.HOSTNAME, framework="flask", read=_server(row), visits=int(row[2]))


@app.post("/visits")
def create_visit():
    """A write: the insert and the server report run in one transaction, so
    they are answered by the same server."""
    note = str((request.get_json(silent=True) or {}).get("note", ""))[:255]
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            conn.begin()
            cur.execute(
                "INSERT INTO visits (app_server, framework, note) VALUES (%s, 'flask', %s)",
                (db.HOSTNAME, note),
            )
            cur.execute("SELECT @@server_id, @@hostname, LAST_INSERT_ID()")
            row = cur.fetchone()
            conn.commit()
    finally:
        conn.close()
    return jsonify(app_server=db.HOSTNAME, framework="flask", write=_server(row), id=int(row[2])), 201


@app.get("/visits/<int:visit_id>")
def get_visit(visit_id):
    """A read of one row; 404 when the answering server does not have it (yet)."""
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(VISIT_QUERY, (visit_id,))
            row = cur.fetchone()
    finally:
        conn.close()
    if row[2] is None:
        return jsonify(app_server=db.HOSTNAME, framework="flask", read=_server(row), found=False), 404
    return jsonify(
        app_server=db.HOSTNAME,
        framework="flask",
        read=_server(row),
        found=True,
        visit={"id": int(row[2]), "app_server": row[3], "framework": row[4], "note": row[5]},
    )


@app.get("/healthz")
def healthz():
    """Healthy when a query through the proxy succeeds."""
    try:
        conn = db.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
                cur.fetchone()
        finally:
            conn.close()
    except pymysql.MySQLError as err:
        return jsonify(status="unhealthy", error=str(err)), 503
    return jsonify(status="ok", app_server=db.HOSTNAME)


@app.errorhandler(pymysql.MySQLError)
def database_error(err):
    return jsonify(app_server=db.HOSTNAME, error=str(err)), 500
