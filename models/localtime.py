"""The province's local time, Asia/Ho_Chi_Minh: UTC+7, without summer time since 1975.

A fixed offset converts local times exactly (and far faster than a zone lookup per value).
Every part of the hub that turns a naive local time or a local date into UTC uses these.
"""

from __future__ import annotations

from datetime import timedelta, timezone

LOCAL_OFFSET = timedelta(hours=7)
LOCAL = timezone(LOCAL_OFFSET)
