"""Places one voice call through Tencent Cloud's official Python SDK
(tencentcloud-sdk-python-vms, API 2020-09-02, SendTtsVoice) to the endpoint given, over
plain HTTP, and prints the outcome as one JSON line: {"ok": true, "body": {..}} or
{"ok": false, "code": .., "message": ..}.

Exit status: 0 when the reply has a SendStatus, 1 when the service refused the request
(the code is printed), 2 when the SDK failed without a reply.

Used by tests/it/sdk_verifies_mocks.rs against the verifying mock in tests/it/support/mocks/.
"""

import argparse
import json
import sys

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.vms.v20200902 import models, vms_client


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True, help="host:port of the gateway")
    parser.add_argument("--secret-id", required=True)
    parser.add_argument("--secret-key", required=True)
    parser.add_argument("--region", default="ap-guangzhou")
    parser.add_argument("--called-number", required=True)
    parser.add_argument("--voice-sdk-app-id", required=True)
    parser.add_argument("--template-id", required=True)
    parser.add_argument("--param", action="append", default=[])
    parser.add_argument("--play-times", type=int, default=None)
    parser.add_argument("--session-context", default=None)
    args = parser.parse_args()

    # HttpProfile's `protocol` is what switches the SDK to plain HTTP (its `scheme`).
    http_profile = HttpProfile(protocol="http", endpoint=args.endpoint, reqTimeout=10)
    profile = ClientProfile(httpProfile=http_profile)
    cred = credential.Credential(args.secret_id, args.secret_key)
    client = vms_client.VmsClient(cred, args.region, profile)

    request = models.SendTtsVoiceRequest()
    request.CalledNumber = args.called_number
    request.VoiceSdkAppid = args.voice_sdk_app_id
    request.TemplateId = args.template_id
    request.TemplateParamSet = args.param
    request.PlayTimes = args.play_times
    request.SessionContext = args.session_context
    try:
        response = client.SendTtsVoice(request)
    except TencentCloudSDKException as error:
        code = error.get_code()
        print(json.dumps({"ok": False, "code": code, "message": error.get_message()}, ensure_ascii=False))
        # Only replies from the service carry a RequestId; the SDK wraps transport failures
        # in the same exception type without one.
        return 1 if error.get_request_id() else 2
    body = json.loads(response.to_json_string())
    ok = isinstance(body.get("SendStatus"), dict) and bool(body["SendStatus"].get("CallId"))
    print(json.dumps({"ok": ok, "code": None, "body": body}, ensure_ascii=False))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
