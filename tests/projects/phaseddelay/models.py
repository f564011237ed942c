from django.db import models


class Gizmo(models.Model):
    size = models.IntegerField(default=0)
