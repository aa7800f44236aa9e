"""Schemathesis hooks for the loadlab API's conformance run (api/test/openapi-conformance.test.ts).

A reading's deviceTime must lie in a window around the server's clock (MEASUREMENT_MAX_AGE_HOURS
before it, MEASUREMENT_MAX_SKEW_SECONDS after it; the document says so in words, which a JSON
schema cannot check). Generated date-times are drawn from inside that window, as a real device's
clock gives them; every other check still runs on them.
"""
from datetime import datetime, timedelta, timezone
import os

import schemathesis
from hypothesis import strategies as st

MAX_AGE_S = int(float(os.environ.get("MEASUREMENT_MAX_AGE_HOURS", "168")) * 3600)
MAX_SKEW_S = int(float(os.environ.get("MEASUREMENT_MAX_SKEW_SECONDS", "300")))


def _recent(offset_s: int) -> str:
    moment = datetime.now(timezone.utc) + timedelta(seconds=offset_s)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# A margin on both sides: the request reaches the server a moment after it is generated.
schemathesis.openapi.format("date-time", st.integers(min_value=-(MAX_AGE_S - 3600), max_value=max(0, MAX_SKEW_S - 60)).map(_recent))


def _in(value, low, high, low_open=False):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and (value > low if low_open else value >= low) and value <= high


def _charge_in_order(item):
    """chargeNow <= chargeFull (a reading's charge cannot exceed the capacity): a rule across two
    fields, which a JSON schema cannot state. Two values each within its own range but in the wrong
    order are swapped, which keeps both within range; anything else is left as generated, so an
    invalid reading stays invalid."""
    if isinstance(item, dict):
        now, full = item.get("chargeNow"), item.get("chargeFull")
        if _in(now, 0, 100_000) and _in(full, 0, 100_000, low_open=True) and now > full:
            item = {**item, "chargeNow": full, "chargeFull": now}
    return item


@schemathesis.hook
def map_body(context, body):
    if isinstance(body, list):
        return [_charge_in_order(item) for item in body]
    return _charge_in_order(body)
