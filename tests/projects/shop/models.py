from django.db import models


class Product(models.Model):
    name = models.CharField(max_length=100)
    post = models.ForeignKey("blog.Post", null=True, on_delete=models.SET_NULL)


class Order(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE)
    quantity = models.IntegerField(default=1)

    class Meta:
        indexes = [models.Index(fields=["quantity"], name="shop_order_qty_idx")]
