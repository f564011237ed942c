from django.db import models


class Counter(models.Model):
    n = models.IntegerField(default=0)
