from django.db import models


class Visit(models.Model):
    """A row of the shared `visits` table (created by the database init)."""

    created_at = models.DateTimeField(auto_now_add=True)
    app_server = models.CharField(max_length=64)
    framework = models.CharField(max_length=16)
    note = models.CharField(max_length=255, blank=True)

    class Meta:
        managed = False
        db_table = "visits"
