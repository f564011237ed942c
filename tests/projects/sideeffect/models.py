from django.db import models


class Mark(models.Model):
    """One row per time a migration's code ran: the tests count them."""

    note = models.CharField(max_length=20)
    extra = models.IntegerField(null=True)
