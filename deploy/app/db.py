"""Database connections for the Flask app, through Switchyard.

DB_HOSTS lists the Switchyard instances to use, in order of preference
("switchyard1:6033,switchyard2:6033"): each application server prefers its own
proxy and falls back to the other one only when it cannot connect, so neither
proxy is a single point of failure.
"""

import os
import socket

import pymysql

DB_USER = os.environ.get("DB_USER", "app")
DB_PASSWORD = os.environ.get("DB_PASSWORD", "")
DB_NAME = os.environ.get("DB_NAME", "app")
CONNECT_TIMEOUT = float(os.environ.get("DB_CONNECT_TIMEOUT", "2"))
HOSTNAME = socket.gethostname()

# Client errors that mean "no session was established": safe to try the next
# proxy. Anything later (a query error) is returned to the caller instead.
_CONNECT_ERRORS = {2003, 2005, 2006, 2013}


def hosts():
    """Return [(host, port), ...] from DB_HOSTS."""
    out = []
    for item in os.environ.get("DB_HOSTS", "127.0.0.1:3306").split(","):
        item = item.strip()
        if not item:
            continue
        host, _, port = item.rpartition(":")
        out.append((host, int(port)))
    return out


def connect():
    """Open a connection to the first reachable proxy in DB_HOSTS."""
    last = None
    for host, port in hosts():
        try:
            return pymysql.connect(
                host=host,
                port=port,
                user=DB_USER,
                password=DB_PASSWORD,
                database=DB_NAME,
                connect_timeout=CONNECT_TIMEOUT,
                read_timeout=10,
                write_timeout=10,
                autocommit=True,
                charset="utf8mb4",
            )
        except pymysql.err.OperationalError as err:
            if err.args and err.args[0] in _CONNECT_ERRORS:
                last = err
                continue
            raise
    raise last
