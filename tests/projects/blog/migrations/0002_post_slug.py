from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("blog", "0001_initial")]
    operations = [migrations.AddField("post", "slug", models.SlugField(default=""))]
