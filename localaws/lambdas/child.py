"""Lambda execution environment (a subprocess): ``python child.py <code dir> <module.function>``.

Reads one JSON event per stdin line, answers one JSON line per event on the original stdout:
``{"ok": result}`` or ``{"error": {"errorMessage", "errorType", "stackTrace"}}``. The handler's own
prints go to stderr (the function's log). Uses only the standard library.
"""

import importlib
import json
import os
import sys
import traceback
import uuid


class _Context:
    """The parts of the Lambda context object handlers commonly read."""

    def __init__(self, name: str):
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = os.environ.get("LOCALAWS_LAMBDA_ARN", "")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = os.environ.get("LOCALAWS_LAMBDA_STREAM", "")

    def get_remaining_time_in_millis(self) -> int:
        return int(os.environ.get("LOCALAWS_LAMBDA_TIMEOUT_MS", "3000"))


def main() -> None:
    code_dir, handler = sys.argv[1], sys.argv[2]
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # the handler's prints go to the log, never into the answers
    sys.stdout = sys.stderr
    sys.path.insert(0, code_dir)
    module_name, _, function_name = handler.rpartition(".")
    try:
        function = getattr(importlib.import_module(module_name.replace("/", ".")), function_name)
    except Exception as exc:  # noqa: BLE001 - reported per invocation, as Lambda's Runtime.ImportModuleError
        function, load_error = None, {"errorMessage": f"Unable to import module '{module_name}': {exc}",
                                      "errorType": "Runtime.ImportModuleError", "stackTrace": []}
    for line in sys.stdin:
        if function is None:
            reply = {"error": load_error}
        else:
            try:
                reply = {"ok": function(json.loads(line), _Context(os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")))}
            except Exception as exc:  # noqa: BLE001 - the handler's failure is the invocation's result
                reply = {"error": {"errorMessage": str(exc), "errorType": type(exc).__name__,
                                   "stackTrace": traceback.format_tb(exc.__traceback__)}}
                traceback.print_exc()
        try:
            answers.write(json.dumps(reply) + "\n")
        except (TypeError, ValueError) as exc:
            answers.write(json.dumps({"error": {"errorMessage": f"Unable to marshal response: {exc}",
                                                "errorType": "Runtime.MarshalError", "stackTrace": []}}) + "\n")
        answers.flush()


if __name__ == "__main__":
    main()
