"""Every kind of model and field the schema check must not misjudge on a fresh database.

Many-to-many tables (auto-created, explicit, symmetrical), generic relations, proxy and
unmanaged models, multi-table inheritance, a generated column, a db_default, a custom
db_table, a UUID primary key and the types whose names differ between Django and the catalog.
"""

import uuid

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey, GenericRelation
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models.functions import Lower


class Note(models.Model):
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_id = models.PositiveIntegerField()
    target = GenericForeignKey("content_type", "object_id")
    text = models.TextField()


class Place(models.Model):
    name = models.CharField(max_length=50)
    lowered = models.GeneratedField(
        expression=Lower("name"), output_field=models.CharField(max_length=50), db_persist=True
    )
    notes = GenericRelation(Note)
    neighbours = models.ManyToManyField("self")
    visitors = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Visit")
    opened = models.DateField(null=True)
    closes = models.TimeField(null=True)
    rating = models.DecimalField(max_digits=4, decimal_places=2, db_default=0)


class Restaurant(Place):  # multi-table inheritance: a table with place_ptr_id only
    serves_pizza = models.BooleanField(default=False)


class Visit(models.Model):
    id = models.BigAutoField(primary_key=True)
    place = models.ForeignKey(Place, on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    stayed = models.DurationField()
    address = models.GenericIPAddressField(null=True)


class Document(models.Model):
    key = models.UUIDField(primary_key=True, default=uuid.uuid4)
    body = models.JSONField(default=dict)
    blob = models.BinaryField(null=True)
    size = models.PositiveBigIntegerField(default=0)
    ratio = models.FloatField(default=0)
    owner = models.OneToOneField(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    places = models.ManyToManyField(Place, db_table="kinds_document_place_links")

    class Meta:
        db_table = "kinds_docs"


class OpenPlace(Place):
    class Meta:
        proxy = True


class Legacy(models.Model):  # a table this code never creates
    code = models.CharField(max_length=10)

    class Meta:
        managed = False
        db_table = "legacy_codes"
