"""Pusher's official Python server SDK (`pusher` from PyPI) as a command line, for tests/pusher.rs.

Usage: sdk.py <command> [json args]; prints the SDK's answer as JSON, or `ERROR <status> <message>`
when Herald refused the call. Configured from HERALD_PUSHER_{APP_ID,KEY,SECRET} and HERALD_URL.
"""
import json
import os
import sys
from urllib.parse import urlparse

import pusher

url = urlparse(os.environ["HERALD_URL"])
client = pusher.Pusher(
    app_id=os.environ["HERALD_PUSHER_APP_ID"],
    key=os.environ["HERALD_PUSHER_KEY"],
    secret=os.environ["HERALD_PUSHER_SECRET"],
    host=url.hostname,
    port=url.port,
    ssl=False,
)

command, args = sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
calls = {
    "authenticate": lambda a: client.authenticate(a["channel"], a["socket_id"], a.get("custom_data")),
    "authenticate_user": lambda a: client.authenticate_user(a["socket_id"], a["user"]),
    "trigger": lambda a: client.trigger(a["channels"], a["event"], a["data"], a.get("socket_id")),
    "trigger_batch": lambda a: client.trigger_batch(a["batch"]),
    "channel_info": lambda a: client.channel_info(a["channel"], a.get("info")),
    "channels_info": lambda a: client.channels_info(a.get("prefix"), a.get("info")),
    "users_info": lambda a: client.users_info(a["channel"]),
    "terminate_user_connections": lambda a: client.terminate_user_connections(a["user"]),
    "send_to_user": lambda a: client.send_to_user(a["user"], a["event"], a["data"]),
    "validate_webhook": lambda a: client.validate_webhook(a["key"], a["signature"], a["body"]),
}
try:
    print(json.dumps(calls[command](args)))
except pusher.errors.PusherError as e:
    print(f"ERROR {type(e).__name__} {e}")
