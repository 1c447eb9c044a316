"""The shop's models. written_by is set by triggers (migration 0002) to the
@@server_id of the server that ran the INSERT or UPDATE; with row-based
replication the replicas copy the primary's value."""
from django.db import models


class Customer(models.Model):
    name = models.CharField(max_length=100, unique=True)
    balance = models.IntegerField(default=0)
    written_by = models.IntegerField(default=0)

    def __str__(self):
        return self.name


class Order(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="orders")
    item = models.CharField(max_length=100)
    qty = models.IntegerField()
    written_by = models.IntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["item"])]
