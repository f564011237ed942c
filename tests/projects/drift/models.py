"""One app in three versions, chosen by settings.DRIFT_VERSION: what a rollback leaves behind.

v1: Account (name, score, tags) and Tag. v2 adds Account.plan, NOT NULL with a default (Django
fills the rows, then drops the database default) and a new model, Invoice: v1's code on v2's
schema cannot INSERT an Account. compat: a v2 that keeps v1 working, Account.nickname nullable,
Account.tier with a db_default, and (PostgreSQL, SQLite) columns that the database fills. Each version's migrations: drift.migrations (v1),
drift.v2.migrations, drift.compat.migrations (testproj/drift_settings.py picks one).
"""

from django.conf import settings
from django.db import models

VERSION = getattr(settings, "DRIFT_VERSION", "v1")


class Tag(models.Model):
    name = models.CharField(max_length=20)


class Account(models.Model):
    name = models.CharField(max_length=50)
    score = models.IntegerField(default=0)
    tags = models.ManyToManyField(Tag)
    if VERSION == "v2":
        plan = models.CharField(max_length=10, default="free")
    if VERSION == "compat":
        nickname = models.CharField(max_length=20, null=True)
        tier = models.IntegerField(db_default=1)


if VERSION == "v2":

    class Invoice(models.Model):
        account = models.ForeignKey(Account, on_delete=models.CASCADE)
        total = models.IntegerField()
