from django.db import migrations, models

TABLES = """
CREATE TABLE gated_item (id serial PRIMARY KEY, count integer NOT NULL, label varchar(50) NOT NULL,
                         tag varchar(30) NOT NULL, price numeric(8, 2), stamp timestamp(6),
                         mask varbit(20));
CREATE INDEX gated_item_tag ON gated_item (tag);
CREATE TABLE gated_part (id integer NOT NULL, v integer) PARTITION BY RANGE (id);
CREATE TABLE gated_part_1 PARTITION OF gated_part FOR VALUES FROM (0) TO (25001);
CREATE TABLE gated_part_2 PARTITION OF gated_part FOR VALUES FROM (25001) TO (50001);
CREATE TABLE gated_loose (id integer NOT NULL, v integer);
CREATE MATERIALIZED VIEW gated_view AS SELECT id, count FROM gated_item;
"""


class Migration(migrations.Migration):
    """The tables the gate's tests fill with 50,000 rows each (tests/test_risk_gate.py)."""

    initial = True
    dependencies: list[tuple[str, str]] = []
    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(TABLES)],
            state_operations=[
                migrations.CreateModel(
                    "Item",
                    [
                        ("id", models.AutoField(primary_key=True, serialize=False)),
                        ("count", models.IntegerField()),
                        ("label", models.CharField(max_length=50)),
                    ],
                )
            ],
        )
    ]
