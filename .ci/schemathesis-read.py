"""Part of .ci/schemathesis: opens the IMAP session "st-read" on the run's Dovecot (scripts/api-fuzz-mail.ts wrote
<work>/mail.json), writes the mailbox's real message and attachment ids as schemathesis dictionaries, and writes
<work>/schemathesis.toml: the static .ci/schemathesis.toml plus the bindings that fuzz the read routes on st-read.

    ST_READ_KEY=... python3 .ci/schemathesis-read.py WORK BASE_URL STATIC_TOML

The key (the environment variable ST_READ_KEY, which the generated config names) is the reader principal's.
"""
import json
import os
import pathlib
import sys
import urllib.request

work, base, static = pathlib.Path(sys.argv[1]), sys.argv[2], pathlib.Path(sys.argv[3])
key = os.environ["ST_READ_KEY"]
mail = json.loads((work / "mail.json").read_text())


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method, headers={"Authorization": f"Bearer {key}", "content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


session = {"name": "st-read", "type": "imap", "host": mail["host"], "port": mail["port"], "secure": False, "tls": {"starttls": "off"}, "username": mail["user"], "password": mail["password"]}
if call("POST", "/v1/sessions", session)["state"] != "connected":
    sys.exit("st-read is not connected")
messages = call("GET", "/v1/sessions/st-read/messages?limit=100")["messages"]
if not messages:
    sys.exit("the mailbox of st-read is empty")


def entry(value):
    # libFuzzer dictionary syntax: one quoted value per line
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"\n'


(work / "message-ids.dict").write_text("".join(entry(m["id"]) for m in messages))
(work / "attachment-ids.dict").write_text("".join(sorted({entry(a["id"]) for m in messages for a in m["attachments"]})))
(work / "schemathesis.toml").write_text(static.read_text() + """
# ---- added by .ci/schemathesis-read.py for this run: the read routes on the IMAP session st-read, with the key
# of the principal that owns it, and the mailbox's real ids half of the time (the other half generated:
# MESSAGE_NOT_FOUND, ATTACHMENT_NOT_FOUND)
[dictionaries.message-ids]
from-file = "message-ids.dict"

[dictionaries.attachment-ids]
from-file = "attachment-ids.dict"

[[operations]]
include-path-regex = '^/v1/sessions/\\{name\\}/(folders|messages)$'
parameters = { "path.name" = "st-read" }
headers = { Authorization = "Bearer ${ST_READ_KEY}" }

[[operations]]
include-path-regex = '^/v1/sessions/\\{name\\}/messages/\\{id\\}(/raw)?$'
parameters = { "path.name" = "st-read", "path.id" = { dictionary = "message-ids", probability = 0.5 } }
headers = { Authorization = "Bearer ${ST_READ_KEY}" }

[[operations]]
include-path-regex = '^/v1/sessions/\\{name\\}/messages/\\{id\\}/attachments/\\{attachmentId\\}$'
parameters = { "path.name" = "st-read", "path.id" = { dictionary = "message-ids", probability = 0.5 }, "path.attachmentId" = { dictionary = "attachment-ids", probability = 0.5 } }
headers = { Authorization = "Bearer ${ST_READ_KEY}" }
""")
print(f"st-read: {len(messages)} messages")
