"""The inbound SMS webhook as a careful user would write it without this project: a lean
Python Lambda handler (issue 17). boto3 clients and twilio's RequestValidator are made once
at import; the handler verifies the signature, then makes the bridge's two writes: one
transaction (the replay marker, the conversation, the message) and one SendMessageBatch
(a copy per agent). It is the baseline of `cargo bench --bench inbound_vs_python`.

It still does less than the bridge: no unique handles (a random one, never reserved), no
delivery legs or outbox entry, no keywords, no automated replies, no read of who gets the
copies (claims, agents away): every agent gets one.
"""

import base64
import json
import os
import random
import time
import uuid
from urllib.parse import parse_qsl

import boto3
from twilio.request_validator import RequestValidator

TABLE = os.environ["TABLE_NAME"]
QUEUE_URL = os.environ["DELIVERY_QUEUE_URL"]
PUBLIC_BASE_URL = os.environ["PUBLIC_BASE_URL"].rstrip("/")
LINES = {line["sms_number"]: line for line in json.loads(os.environ["BRIDGE_LINES"])}

dynamodb = boto3.client("dynamodb")
sqs = boto3.client("sqs")
validator = RequestValidator(os.environ["TWILIO_AUTH_TOKEN"])

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
HANDLE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def answer(status, body=""):
    return {"statusCode": status, "headers": {"Content-Type": "text/xml"}, "body": body}


def handler(event, context):
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8")
    params = dict(parse_qsl(body, keep_blank_values=True))
    url = PUBLIC_BASE_URL + event["rawPath"]
    if event.get("rawQueryString"):
        url += "?" + event["rawQueryString"]
    signature = (event.get("headers") or {}).get("x-twilio-signature", "")
    if not validator.validate(url, params, signature):
        return answer(403)
    sid, sender, to, text = params.get("MessageSid"), params.get("From"), params.get("To"), params.get("Body", "")
    if not sid or not sender or not to:
        return answer(400)
    line = LINES.get(to)
    if line is None:
        return answer(404)

    now = str(int(time.time() * 1000))
    message_id = str(uuid.uuid4())
    conversation = {"PK": {"S": f"CONV#{line['id']}#{sender}"}, "SK": {"S": "META"}}
    try:
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": TABLE,
                        "Item": {"PK": {"S": f"SEEN#twilio#{sid}"}, "SK": {"S": "SEEN"}},
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": conversation,
                        "UpdateExpression": "SET handle = if_not_exists(handle, :handle), last_text = :text, "
                        "updated_at = :now",
                        "ExpressionAttributeValues": {
                            ":handle": {"S": "".join(random.choice(HANDLE_ALPHABET) for _ in range(2))},
                            ":text": {"S": text[:80]},
                            ":now": {"N": now},
                        },
                    }
                },
                {
                    "Put": {
                        "TableName": TABLE,
                        "Item": {
                            "PK": conversation["PK"],
                            "SK": {"S": f"MSG#{message_id}"},
                            "direction": {"S": "inbound"},
                            "body": {"S": text},
                            "received_at": {"N": now},
                        },
                    }
                },
            ]
        )
    except dynamodb.exceptions.TransactionCanceledException as cancelled:
        reasons = cancelled.response.get("CancellationReasons", [])
        if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
            return answer(200, EMPTY_TWIML)  # a replay
        raise

    entries = [
        {
            "Id": str(n),
            "MessageBody": json.dumps(
                {"kind": "forward_to_agent", "customer": sender, "agent": agent, "text": text}
            ),
            "MessageGroupId": f"fwd.{line['id']}.{sender}.{agent}",
            "MessageDeduplicationId": f"{message_id}.{n}",
        }
        for n, agent in enumerate(line["agents"])
    ]
    sqs.send_message_batch(QueueUrl=QUEUE_URL, Entries=entries)
    return answer(200, EMPTY_TWIML)
