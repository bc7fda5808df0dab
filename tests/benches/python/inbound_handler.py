"""The inbound SMS webhook as a user would write it without this project: a Python Lambda
handler with boto3 and twilio's RequestValidator, doing what the bridge's sms-webhook does
on the same path (verify, drop replays, find or open the conversation, store the message,
queue one copy per agent). It is the baseline of `cargo bench --bench inbound_vs_python`,
written plainly, the way the AWS and Twilio tutorials show, not made slow on purpose.
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
LINES = json.loads(os.environ["BRIDGE_LINES"])

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
    line = next((l for l in LINES if l["sms_number"] == to), None)
    if line is None:
        return answer(404)

    # Drop replays: Twilio retries a webhook that doesn't answer in time.
    try:
        dynamodb.put_item(
            TableName=TABLE,
            Item={"PK": {"S": f"SEEN#twilio#{sid}"}, "SK": {"S": "SEEN"}},
            ConditionExpression="attribute_not_exists(PK)",
        )
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return answer(200, EMPTY_TWIML)

    key = {"PK": {"S": f"CONV#{line['id']}#{sender}"}, "SK": {"S": "META"}}
    conversation = dynamodb.get_item(TableName=TABLE, Key=key).get("Item")
    now = int(time.time() * 1000)
    if conversation is None:
        handle = "".join(random.choice(HANDLE_ALPHABET) for _ in range(2))
        dynamodb.put_item(
            TableName=TABLE,
            Item={**key, "handle": {"S": handle}, "status": {"S": "open"}, "created_at": {"N": str(now)}},
        )
    else:
        handle = conversation["handle"]["S"]

    message_id = str(uuid.uuid4())
    dynamodb.put_item(
        TableName=TABLE,
        Item={
            "PK": key["PK"],
            "SK": {"S": f"MSG#{message_id}"},
            "direction": {"S": "inbound"},
            "body": {"S": text},
            "received_at": {"N": str(now)},
        },
    )
    for agent in line["agents"]:
        job = {"kind": "forward_to_agent", "handle": handle, "customer": sender, "agent": agent, "text": text}
        sqs.send_message(
            QueueUrl=QUEUE_URL,
            MessageBody=json.dumps(job),
            MessageGroupId=f"fwd.{line['id']}.{sender}.{agent}",
            MessageDeduplicationId=f"{message_id}.{agent}",
        )
    return answer(200, EMPTY_TWIML)
