"""Part of .ci/schemathesis: opens the IMAP sessions "st-read" and "st-write" on the run's Dovecot
(scripts/api-fuzz-mail.ts wrote <work>/mail.json), writes their mailboxes' real message and attachment ids as
schemathesis dictionaries, and writes <work>/schemathesis.toml: the number of examples, the static
.ci/schemathesis.toml, and the bindings that fuzz the mail routes on those sessions.

    ST_READ_KEY=... ST_WRITE_KEY=... python3 .ci/schemathesis-read.py WORK BASE_URL STATIC_TOML MAX_EXAMPLES

The keys (environment variables, which the generated config names) are those of the principals that own the
sessions: the main key of the run can neither see nor close them.
"""
import json
import os
import pathlib
import sys
import urllib.request

work, base, static, max_examples = pathlib.Path(sys.argv[1]), sys.argv[2], pathlib.Path(sys.argv[3]), int(sys.argv[4])
mail = json.loads((work / "mail.json").read_text())


def call(key, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method, headers={"Authorization": f"Bearer {key}", "content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def open_session(name, key, user, password):
    session = {"name": name, "type": "imap", "host": mail["host"], "port": mail["port"], "secure": False, "tls": {"starttls": "off"}, "username": user, "password": password, "watch": []}
    if call(key, "POST", "/v1/sessions", session)["state"] != "connected":
        sys.exit(f"{name} is not connected")
    messages = call(key, "GET", f"/v1/sessions/{name}/messages?limit=100")["messages"]
    if not messages:
        sys.exit(f"the mailbox of {name} is empty")
    return messages


def entry(value):
    # libFuzzer dictionary syntax: one quoted value per line
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"\n'


read = open_session("st-read", os.environ["ST_READ_KEY"], mail["user"], mail["password"])
write = open_session("st-write", os.environ["ST_WRITE_KEY"], mail["writer"]["user"], mail["writer"]["password"])
(work / "message-ids.dict").write_text("".join(entry(m["id"]) for m in read))
(work / "attachment-ids.dict").write_text("".join(sorted({entry(a["id"]) for m in read for a in m["attachments"]})))
(work / "write-message-ids.dict").write_text("".join(entry(m["id"]) for m in write))

# top-level keys come before the static file's first table; an operation's own max-examples (the event stream's)
# still wins over this one, which a --max-examples on the command line would not let it
(work / "schemathesis.toml").write_text(f"generation.max-examples = {max_examples}\n\n" + static.read_text() + """
# ---- added by .ci/schemathesis-read.py for this run. The read routes (GET) on the IMAP session st-read and the
# routes that change mail on st-write, each with the key of the principal that owns it, and the mailbox's real ids
# half of the time (the other half generated: MESSAGE_NOT_FOUND, ATTACHMENT_NOT_FOUND). Only GETs reach st-read, so
# that its messages stay for the attachment route; st-write loses its messages as the run moves and deletes them.
# An entry selects by name ("METHOD /path"): schemathesis ORs an entry's include-path-regex and include-method-regex.
[dictionaries.message-ids]
from-file = "message-ids.dict"

[dictionaries.attachment-ids]
from-file = "attachment-ids.dict"

[dictionaries.write-message-ids]
from-file = "write-message-ids.dict"

[[operations]]
include-name-regex = '^GET /v1/sessions/\\{name\\}/(folders|messages)$'
# a long poll (wait > 0) on a mailbox that gets no new mail lasts its whole wait: the long poll has its own tests
parameters = { "path.name" = "st-read", "query.wait" = 0 }
headers = { Authorization = "Bearer ${ST_READ_KEY}" }

[[operations]]
include-name-regex = '^GET /v1/sessions/\\{name\\}/messages/\\{id\\}(/raw)?$'
parameters = { "path.name" = "st-read", "path.id" = { dictionary = "message-ids", probability = 0.5 } }
headers = { Authorization = "Bearer ${ST_READ_KEY}" }

[[operations]]
include-name-regex = '^GET /v1/sessions/\\{name\\}/messages/\\{id\\}/attachments/\\{attachmentId\\}$'
parameters = { "path.name" = "st-read", "path.id" = { dictionary = "message-ids", probability = 0.5 }, "path.attachmentId" = { dictionary = "attachment-ids", probability = 0.5 } }
headers = { Authorization = "Bearer ${ST_READ_KEY}" }

[[operations]]
include-name-regex = '^(PATCH|DELETE|POST) /v1/sessions/\\{name\\}/messages/\\{id\\}(/move|/reply|/forward)?$'
parameters = { "path.name" = "st-write", "path.id" = { dictionary = "write-message-ids", probability = 0.5 } }
headers = { Authorization = "Bearer ${ST_WRITE_KEY}" }

[[operations]]
include-name-regex = '^[A-Z]+ /v1/sessions/\\{name\\}/(messages/(move|delete|update)|claims(/.*)?|send)$'
parameters = { "path.name" = "st-write" }
headers = { Authorization = "Bearer ${ST_WRITE_KEY}" }
""")
print(f"st-read: {len(read)} messages, st-write: {len(write)} messages")
