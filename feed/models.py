"""The read state of each person's notification feed `user:<id>`.

One row per person holding a read position, the pair (epoch, seq): everything at or below
`seq` in that epoch has been read. Not one row per read notification: a feed is an ordered
log, so "read up to here" (like Matrix's fully-read marker or Slack's `last_read`) is one
pair that only moves forward. Tabs and devices that mark read concurrently merge by taking
the later position, nothing grows with the feed, and a position from a lost epoch (Redis
lost the stream) is simply replaced by one in the new epoch.

Keyed by the user id as the stream names it (`user:<id>`, a token's `sub`), not by a
foreign key: a token holder's read state then needs no user lookup, the same way checking a
token needs no database (docs/protocol.md "Tokens"). `feed.apps` deletes the row with its user.
"""

from __future__ import annotations

from django.db import models


class ReadPosition(models.Model):
    person = models.CharField(max_length=64, unique=True, help_text="The user id of the feed user:<id>")
    epoch = models.CharField(max_length=64, help_text="The stream's epoch the position belongs to")
    seq = models.BigIntegerField(default=0, help_text="Read up to and including this seq")
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"user:{self.person} read to {self.epoch}#{self.seq}"
