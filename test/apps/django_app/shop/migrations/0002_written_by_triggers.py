"""Triggers that stamp every inserted or updated row with the @@server_id of
the server that ran the statement."""
from django.db import migrations

TABLES = ["shop_customer", "shop_order"]


def _forward():
    stmts = []
    for table in TABLES:
        for when, suffix in (("INSERT", "bi"), ("UPDATE", "bu")):
            stmts.append(
                f"CREATE TRIGGER {table}_{suffix} BEFORE {when} ON {table} "
                f"FOR EACH ROW SET NEW.written_by = @@server_id"
            )
    return stmts


def _backward():
    return [f"DROP TRIGGER {table}_{suffix}" for table in TABLES for suffix in ("bi", "bu")]


class Migration(migrations.Migration):

    dependencies = [("shop", "0001_initial")]

    operations = [migrations.RunSQL(_forward(), _backward())]
