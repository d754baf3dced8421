"""The host shop's own product model: it knows nothing of search (docs/integration.md feeds it in)."""

from django.db import models


class Garment(models.Model):
    code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    colour = models.CharField(max_length=40, blank=True)
    gender = models.CharField(max_length=20, blank=True)
    kind = models.CharField(max_length=60, blank=True)
    fabric = models.CharField(max_length=60, blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    photo = models.ImageField(upload_to="garments/", blank=True)
    on_sale = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"
