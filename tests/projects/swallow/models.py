from django.db import models


class Row(models.Model):
    note = models.CharField(max_length=20)
