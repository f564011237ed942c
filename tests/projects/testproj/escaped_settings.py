"""testproj, printing every secret it can reach as it is imported, in every form a careless
settings module prints them: DATABASES itself (repr), str of a list, ascii(), JSON with and
without ensure_ascii, percent-encoded, unicode_escape and the repr of the UTF-8 bytes."""

import json
import os
import urllib.parse

from testproj.settings import *  # noqa: F403

SERVICE = os.environ.get("ENTRYPOINT_WAIT_SERVICES", "")
MIGRATE_URL = os.environ.get("ENTRYPOINT_MIGRATE_DATABASE_URL", "")
REACHABLE = [
    DATABASES["default"].get("PASSWORD", ""),  # noqa: F405
    os.environ.get("DJANGO_ADMIN_PASSWORD", ""),
    MIGRATE_URL,
    urllib.parse.unquote(urllib.parse.urlsplit(MIGRATE_URL).password or ""),
    SERVICE,
    urllib.parse.unquote(urllib.parse.urlsplit(SERVICE).password or ""),
]
print(DATABASES)  # noqa: F405
for value in REACHABLE:
    print(value, repr(value), ascii(value), str([value]), {"pw": value})
    print(json.dumps(value), json.dumps({"pw": value}, ensure_ascii=False))
    print(urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value))
    print(value.encode("unicode_escape").decode(), repr(value.encode()))
