from django.db import models


class Item(models.Model):
    """Its table is made by 0001's SQL, with types Django's fields do not write."""

    count = models.IntegerField()
    label = models.CharField(max_length=50)
