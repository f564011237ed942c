from django.db import models


class Gadget(models.Model):
    label = models.CharField(max_length=50)
