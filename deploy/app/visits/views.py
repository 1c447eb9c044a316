"""The Flask app's endpoints again, written with Django's ORM."""

import json

from django.db import connection, transaction
from django.http import JsonResponse
from django.views.decorators.http import require_GET, require_POST

import db

from .models import Visit


def _server():
    # Asked on the same connection (and, for writes, in the same transaction)
    # as the query it describes.
    with connection.cursor() as cur:
        cur.execute("SELECT @@server_id, @@hostname")
        server_id, hostname = cur.fetchone()
    return {"server_id": int(server_id), "hostname": hostname}


@require_GET
def index(request):
    with connection.cursor() as cur:
        cur.execute("SELECT @@server_id, @@hostname, COUNT(*) FROM visits")
        server_id, hostname, count = cur.fetchone()
    return JsonResponse(
        {
            "app_server": db.HOSTNAME,
            "framework": "django",
            "read": {"server_id": int(server_id), "hostname": hostname},
            "visits": int(count),
        }
    )


@require_POST
def create_visit(request):
    try:
        note = str(json.loads(request.body or b"{}").get("note", ""))[:255]
    except (ValueError, AttributeError):
        note = ""
    with transaction.atomic():
        visit = Visit.objects.create(app_server=db.HOSTNAME, framework="django", note=note)
        server = _server()
    return JsonResponse(
        {"app_server": db.HOSTNAME, "framework": "django", "write": server, "id": visit.pk}, status=201
    )


@require_GET
def get_visit(request, visit_id):
    with connection.cursor() as cur:
        cur.execute(
            "SELECT @@server_id, @@hostname, v.id, v.app_server, v.framework, v.note"
            " FROM (SELECT 1) AS one LEFT JOIN visits AS v ON v.id = %s",
            [visit_id],
        )
        row = cur.fetchone()
    body = {
        "app_server": db.HOSTNAME,
        "framework": "django",
        "read": {"server_id": int(row[0]), "hostname": row[1]},
        "found": row[2] is not None,
    }
    if row[2] is None:
        return JsonResponse(body, status=404)
    body["visit"] = {"id": int(row[2]), "app_server": row[3], "framework": row[4], "note": row[5]}
    return JsonResponse(body)
