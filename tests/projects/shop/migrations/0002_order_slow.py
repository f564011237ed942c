import django.db.models.deletion
from django.db import migrations, models
from slowop import slow_step


class Migration(migrations.Migration):
    """DDL, then a pause: killed or interrupted here, the whole migration must roll back."""

    dependencies = [("shop", "0001_initial")]
    operations = [
        migrations.CreateModel(
            name="Order",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False)),
                ("quantity", models.IntegerField(default=1)),
                (
                    "product",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, to="shop.product"
                    ),
                ),
            ],
        ),
        slow_step(),
        migrations.AddIndex("order", models.Index(fields=["quantity"], name="shop_order_qty_idx")),
    ]
