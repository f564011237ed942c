from django.db import models


class Thing(models.Model):
    name = models.CharField(max_length=100)

    class Meta:
        indexes = [models.Index(fields=["name"], name="pgonly_thing_name_idx")]
