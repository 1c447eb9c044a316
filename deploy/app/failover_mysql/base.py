"""Django's MySQL backend with an ordered list of hosts (DB_HOSTS).

Each application server lists its own Switchyard first and the other one
second; only a failure to connect moves on to the next host.
"""

import MySQLdb
from django.db.backends.mysql import base

import db

_CONNECT_ERRORS = {2002, 2003, 2005, 2006, 2013}


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        last = None
        for host, port in db.hosts():
            params = dict(conn_params, host=host, port=port)
            try:
                return super().get_new_connection(params)
            except MySQLdb.OperationalError as err:
                if err.args and err.args[0] in _CONNECT_ERRORS:
                    last = err
                    continue
                raise
        raise last
