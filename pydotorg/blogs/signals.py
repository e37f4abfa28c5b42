"""Signals the blogs app sends, so that other apps can follow its changes without blogs knowing them.

``entries_changed`` is sent after bulk writes that fire no ``post_save`` or ``post_delete``
(the upserts of a feed refresh), inside the writing transaction, so a receiver may record
its own follow-up work in that transaction (search does: pydotorg/search/signals.py).
Saves and deletes of single entries send Django's model signals as usual.
"""

from __future__ import annotations

from django.dispatch import Signal

# Sent with sender=BlogEntry and the keyword arguments:
#   ids: list[int], the primary keys of the entries created, changed or deleted;
#   using: str, the alias of the database written to (the transaction is open on it).
# Receivers' errors propagate (``send``, not ``send_robust``): the refresh's transaction rolls back.
entries_changed = Signal()
