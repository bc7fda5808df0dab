"""A Python function as Lambda runs it: the Runtime API loop (what the managed runtime's
interface client does), around `module.function` given as the only argument. One event at a
time: GET the next event, call the handler, POST its answer (or the error), on one
keep-alive connection to AWS_LAMBDA_RUNTIME_API. The baseline side of
`cargo bench --bench inbound_vs_python`'s "through the Runtime API" rows.

    AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001 python3 lambda_runtime.py inbound_handler.handler
"""

import http.client
import importlib
import json
import os
import sys
import traceback

module_name, function_name = sys.argv[1].rsplit(".", 1)
handler = getattr(importlib.import_module(module_name), function_name)
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].rsplit(":", 1)
runtime = http.client.HTTPConnection(host, int(port))
BASE = "/2018-06-01/runtime/invocation"


def call(method, path, body=None):
    runtime.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
    answer = runtime.getresponse()
    return answer.getheader("Lambda-Runtime-Aws-Request-Id"), answer.read()


while True:
    request_id, event = call("GET", f"{BASE}/next")
    try:
        result = json.dumps(handler(json.loads(event), None))
        call("POST", f"{BASE}/{request_id}/response", result)
    except Exception as error:  # the runtime reports it, as Lambda's would
        failure = {"errorMessage": str(error), "errorType": type(error).__name__,
                   "stackTrace": traceback.format_exc().splitlines()}
        call("POST", f"{BASE}/{request_id}/error", json.dumps(failure))
