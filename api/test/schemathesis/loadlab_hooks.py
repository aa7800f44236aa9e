"""Schemathesis hooks for the loadlab API's conformance run (api/test/openapi-conformance.test.ts).

Two rules of a reading are stated in the document in words, which a JSON schema cannot check:
- its deviceTime lies in a window around the server's clock (MEASUREMENT_MAX_AGE_HOURS before it,
  MEASUREMENT_MAX_SKEW_SECONDS after it), and one device's readings at one deviceTime are one
  reading (another with other values is refused with 409);
- chargeNow <= chargeFull;
- a login's key is the key of its serial (HMAC-SHA256 under the API's TOKEN_SECRET, which the test
  gives this process as LOADLAB_TOKEN_SECRET): a device knows its own key.
Schema-valid values are brought inside them, as a real device gives them; values the generator made
invalid on purpose are left alone, so every check (positive data acceptance included) holds.
"""
from datetime import datetime, timedelta, timezone
import base64
import hashlib
import hmac
import itertools
import os
import re

import schemathesis
from hypothesis import strategies as st

MAX_AGE_S = int(float(os.environ.get("MEASUREMENT_MAX_AGE_HOURS", "168")) * 3600)
MAX_SKEW_S = int(float(os.environ.get("MEASUREMENT_MAX_SKEW_SECONDS", "300")))


def _recent(offset_s: int) -> str:
    moment = datetime.now(timezone.utc) + timedelta(seconds=offset_s)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# A margin on both sides: the request reaches the server a moment after it is generated.
schemathesis.openapi.format("date-time", st.integers(min_value=-(MAX_AGE_S - 3600), max_value=max(0, MAX_SKEW_S - 60)).map(_recent))

# The deviceTime pattern of the document (zod's ISO date-time with an offset). A string that matches
# it is a schema-valid date-time, generated from the pattern rather than the format above.
DATE_TIME = re.compile(
    r"^(?:(?:\d\d[2468][048]|\d\d[13579][26]|\d\d0[48]|[02468][048]00|[13579][26]00)-02-29|\d{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\d|30)|(?:02)-(?:0[1-9]|1\d|2[0-8])))"
    r"T(?:(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d+)?(?:Z|([+-](?:[01]\d|2[0-3]):[0-5]\d)))$",
    re.ASCII,
)
# Each replaced time is a millisecond earlier than the one before, from an hour before the run
# began: the run's readings (one device) all have distinct times, so none conflicts with another,
# and a run of a few thousand readings stays well inside the window.
_ANCHOR = datetime.now(timezone.utc) - timedelta(hours=1)
_EARLIER = itertools.count()


def _unique_recent() -> str:
    moment = _ANCHOR - timedelta(milliseconds=next(_EARLIER))
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _in(value, low, high, low_open=False):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and (value > low if low_open else value >= low) and value <= high


def _in_window(item):
    if isinstance(item, dict) and isinstance(item.get("deviceTime"), str) and DATE_TIME.match(item["deviceTime"]):
        item = {**item, "deviceTime": _unique_recent()}
    return item


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


SERIAL = re.compile(r"^[A-Za-z0-9._:-]{1,128}$", re.ASCII)
KEY = re.compile(r"^[A-Za-z0-9_-]{43}$", re.ASCII)
TOKEN_SECRET = os.environ.get("LOADLAB_TOKEN_SECRET", "").encode()


def _with_key(login):
    """A schema-valid login gets its serial's key (absent or schema-valid keys alike); one the
    generator made invalid on purpose keeps what it has. An explicit null key is invalid (the
    document's key is an optional string), so only an absent key counts as absent."""
    serial = login.get("serial")
    key_valid = "key" not in login or (isinstance(login["key"], str) and KEY.match(login["key"]))
    if isinstance(serial, str) and SERIAL.match(serial) and key_valid:
        mac = hmac.new(TOKEN_SECRET, f"loadlab-device-key:{serial}".encode(), hashlib.sha256).digest()
        login = {**login, "key": base64.urlsafe_b64encode(mac).rstrip(b"=").decode()}
    return login


@schemathesis.hook
def map_body(context, body):
    operation = getattr(getattr(context, "operation", None), "path", "")
    if operation == "/v1/devices/login":
        return _with_key(body) if isinstance(body, dict) else body
    if isinstance(body, list):
        return [_charge_in_order(_in_window(item)) for item in body]
    return _charge_in_order(_in_window(body))
