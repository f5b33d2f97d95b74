"""Python Lambda handlers run for real, without Docker (moto's own invocation needs Docker).

``LambdaProcess`` (``runtime.py``) finds a function in moto's Lambda backend (created by
CreateFunction with a zip, or by CloudFormation with inline ``ZipFile`` code), extracts its code
under ``$LOCALAWS_HOME/lambda/<function>/<code sha>/`` and runs its ``Handler`` in one warm
subprocess (``child.py``): events go in as JSON lines, results come back the same way, as a warm
Lambda execution environment reuses its module between invocations. The handler runs with the
function's ``Environment`` variables and the function's execution role session (the role must trust
``lambda.amazonaws.com`` under IAM enforcement); its prints go to ``/aws/lambda/<function>``.
A handler that raises answers Lambda's ``{"errorMessage", "errorType", "stackTrace"}``.

Only Python runtimes are run; any other runtime, an image package or a missing function raises
``LambdaUnavailable`` with the reason.
"""
