from django.db import models


class Seed(models.Model):
    note = models.CharField(max_length=50)
