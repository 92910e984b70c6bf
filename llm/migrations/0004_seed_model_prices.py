"""Seed the price table the dashboard's cost estimate reads.

OpenAI's list prices in USD per million tokens (standard tier, not batch or cached
input) as known when this was written: prices change, so the streamer should check
them at https://openai.com/api/pricing/ and edit them in the admin. Copied here rather
than imported, so this migration keeps meaning the same thing whatever the code becomes.
"""

from decimal import Decimal

from django.db import migrations

PRICES = {
    # model: (input, output) USD per 1M tokens
    "gpt-4o-mini": ("0.15", "0.60"),
    "gpt-4o": ("2.50", "10.00"),
    "gpt-4.1-mini": ("0.40", "1.60"),
    "gpt-4.1-nano": ("0.10", "0.40"),
    "gpt-4.1": ("2.00", "8.00"),
}


def seed(apps, schema_editor):
    ModelPrice = apps.get_model("llm", "ModelPrice")
    for model, (input_price, output_price) in PRICES.items():
        # A price the streamer already entered stays as it is.
        ModelPrice.objects.get_or_create(
            model=model,
            defaults={"input_per_million": Decimal(input_price), "output_per_million": Decimal(output_price)},
        )


def unseed(apps, schema_editor):
    ModelPrice = apps.get_model("llm", "ModelPrice")
    ModelPrice.objects.filter(model__in=PRICES).delete()


class Migration(migrations.Migration):
    dependencies = [("llm", "0003_budget_usage_streaming")]

    operations = [migrations.RunPython(seed, unseed)]
