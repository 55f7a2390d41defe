"""Reading and advancing a person's read position (feed/models.py explains the design).

`merge` is the rule, as a pure function; `load` and `advance` apply it to the database.
A proposed position counts only in the stream's current epoch and never past its latest
seq: a tab still holding a lost epoch changes nothing, and nothing can be marked read
before the stream has said it. Neither is an error, the way a read receipt for an old
message is not: the answer is the position kept, which the client takes as the truth.
"""

from __future__ import annotations

from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.db import transaction

from .models import ReadPosition


@dataclass(frozen=True, slots=True)
class Position:
    epoch: str
    seq: int


def merge(stored: Position | None, proposed: Position, current_epoch: str, latest: int) -> Position | None:
    """The position to keep: the later of the two in the current epoch, `proposed` capped
    at `latest`; `stored` unchanged when `proposed` belongs to another epoch."""
    if proposed.epoch != current_epoch:
        return stored
    capped = Position(proposed.epoch, min(proposed.seq, latest))
    if stored is None or stored.epoch != current_epoch or stored.seq < capped.seq:
        return capped
    return stored


def _load(person: str) -> Position | None:
    row = ReadPosition.objects.filter(person=person).first()
    return None if row is None else Position(row.epoch, row.seq)


def _advance(person: str, proposed: Position, current_epoch: str, latest: int) -> tuple[Position | None, bool]:
    with transaction.atomic():
        row = ReadPosition.objects.select_for_update().filter(person=person).first()
        stored = None if row is None else Position(row.epoch, row.seq)
        kept = merge(stored, proposed, current_epoch, latest)
        if kept is None or kept == stored:
            return kept, False
        if row is None:
            # The lock above covers no row yet (and SELECT ... FOR UPDATE is a no-op on
            # SQLite): another request may insert the first row between the look and here.
            row, created = ReadPosition.objects.get_or_create(person=person, defaults={"epoch": kept.epoch, "seq": kept.seq})
            if created:
                return kept, True
            row = ReadPosition.objects.select_for_update().get(pk=row.pk)
            stored = Position(row.epoch, row.seq)
            kept = merge(stored, proposed, current_epoch, latest)
            if kept is None or kept == stored:
                return kept, False
        row.epoch, row.seq = kept.epoch, kept.seq
        row.save(update_fields=["epoch", "seq", "updated"])
        return kept, True


load = sync_to_async(_load)
#: (position kept, whether it moved): concurrent calls serialise on the row's transaction.
advance = sync_to_async(_advance)
