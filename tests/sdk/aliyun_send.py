"""Sends one SMS through Alibaba Cloud's official Python SDK (alibabacloud-dysmsapi20170525
on alibabacloud-tea-openapi) to the endpoint given, over plain HTTP, and prints the outcome
as one JSON line: {"ok": true, "status": .., "body": {..}} or {"ok": false, "code": ..,
"status": .., "message": ..}.

Exit status: 0 when the reply's Code is OK, 1 when the service refused the request (the
code is printed), 2 when the SDK failed without a reply from the service.

Used by tests/it/sdk_verifies_mocks.rs against the verifying mock in tests/it/support/mocks/.
"""

import argparse
import json
import sys

from alibabacloud_dysmsapi20170525 import models as sms_models
from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_tea_openapi import models as open_api_models
from darabonba.runtime import RuntimeOptions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True, help="host:port of the gateway")
    parser.add_argument("--access-key-id", required=True)
    parser.add_argument("--access-key-secret", required=True)
    parser.add_argument("--phone", required=True)
    parser.add_argument("--sign-name", required=True)
    parser.add_argument("--template-code", required=True)
    parser.add_argument("--template-param", default=None, help="a JSON object of strings")
    args = parser.parse_args()

    config = open_api_models.Config(
        access_key_id=args.access_key_id,
        access_key_secret=args.access_key_secret,
        endpoint=args.endpoint,
        protocol="http",
    )
    client = Client(config)
    request = sms_models.SendSmsRequest(
        phone_numbers=args.phone,
        sign_name=args.sign_name,
        template_code=args.template_code,
        template_param=args.template_param,
    )
    runtime = RuntimeOptions(autoretry=False, read_timeout=10000, connect_timeout=5000)
    try:
        response = client.send_sms_with_options(request, runtime)
    except Exception as error:  # the SDK raises one exception type per failure kind
        code = getattr(error, "code", None)
        print(
            json.dumps(
                {
                    "ok": False,
                    "code": code,
                    "status": getattr(error, "status_code", None),
                    "message": str(getattr(error, "message", error)),
                },
                ensure_ascii=False,
            )
        )
        return 1 if code else 2
    body = response.body.to_map()
    ok = body.get("Code") == "OK"
    print(
        json.dumps(
            {"ok": ok, "code": body.get("Code"), "status": response.status_code, "body": body},
            ensure_ascii=False,
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
