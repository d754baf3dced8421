"""Keeping each process's copy of the merchandising rules current when the admin changes one."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from search.merchandising import merchandising_rules_forget
from search.models import MerchandisingRule


@receiver(post_save, sender=MerchandisingRule, dispatch_uid="search-merchandising-saved")
@receiver(post_delete, sender=MerchandisingRule, dispatch_uid="search-merchandising-deleted")
def _rules_changed(**kwargs: Any) -> None:
    merchandising_rules_forget()
