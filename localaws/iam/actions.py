"""Every request -> the IAM checks AWS makes for it: action names as IAM knows them and the
resource ARNs per service (S3 in ``localaws.iam.s3``), plus ``iam:PassRole`` for roles handed to a
service. A request the emulator cannot map raises ``Unmodelled`` (the enforcer denies it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from localaws.iam import s3
from localaws.iam.evaluation import Check
from localaws.iam.requests import ApiRequest
from localaws.iam.s3 import Unmodelled

# SigV4 signing name -> IAM service prefix, where they differ.
_PREFIX = {"monitoring": "cloudwatch", "email": "ses"}
_ROLE_KEYS = ("RoleArn", "ExecutionRoleArn", "RoleARN")


def prefix(service: str) -> str:
    """The IAM action prefix of a SigV4 signing name."""
    return _PREFIX.get(service, service)


def _walk(value: Any, keys: tuple[str, ...]) -> Iterator[Any]:
    if isinstance(value, dict):
        for k, v in value.items():
            if k in keys:
                yield v
            yield from _walk(v, keys)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item, keys)


def pass_role_checks(params: dict[str, Any], service_principal: str) -> list[Check]:
    """``iam:PassRole`` on every role ARN a request hands to a service."""
    roles = {r for r in _walk(params, _ROLE_KEYS) if isinstance(r, str) and r}
    ctx = {"iam:passedtoservice": [service_principal]}
    return [Check("iam:PassRole", role, ctx) for role in sorted(roles)]


# --- DynamoDB ------------------------------------------------------------------------------------


def _table(req: ApiRequest, account: str, name: str) -> str:
    return name if name.startswith("arn:") else f"arn:aws:dynamodb:{req.region}:{account}:table/{name}"


_TRANSACT = {"ConditionCheck": "ConditionCheckItem", "Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}


def dynamodb_checks(req: ApiRequest, account: str) -> list[Check]:
    """Table ARN, ``…/index/<name>`` for Query/Scan on an index, one check per table in batches."""
    op, p = req.operation or "", req.params
    if op in ("BatchWriteItem", "BatchGetItem"):
        return [Check(f"dynamodb:{op}", _table(req, account, t)) for t in sorted(p.get("RequestItems") or {})]
    if op in ("TransactWriteItems", "TransactGetItems"):
        out = []
        for item in p.get("TransactItems") or []:
            for kind, body in item.items():
                action = "GetItem" if kind == "Get" else _TRANSACT.get(kind)
                if action is None or not isinstance(body, dict):
                    raise Unmodelled(f"DynamoDB {op} item {kind}")
                out.append(Check(f"dynamodb:{action}", _table(req, account, str(body.get("TableName")))))
        return out
    if op in ("ListTables", "DescribeLimits", "DescribeEndpoints", "ListBackups", "ListGlobalTables"):
        return [Check(f"dynamodb:{op}", "*")]
    if p.get("ResourceArn"):
        return [Check(f"dynamodb:{op}", str(p["ResourceArn"]))]
    if not p.get("TableName"):
        raise Unmodelled(f"DynamoDB {op} without TableName")
    arn = _table(req, account, str(p["TableName"]))
    if op in ("Query", "Scan") and p.get("IndexName"):
        arn = f"{arn}/index/{p['IndexName']}"
    return [Check(f"dynamodb:{op}", arn)]


# --- SageMaker -----------------------------------------------------------------------------------

_SM_VERBS = re.compile(r"^(Create|Describe|Delete|Stop|Update|Start|Retry)(?P<entity>[A-Z]\w+)$")
_SM_TYPES = {"AutoMLJob": "automl-job", "AutoMLJobV2": "automl-job", "Trial": "experiment-trial"}


def _kebab(entity: str) -> str:
    return _SM_TYPES.get(entity) or re.sub(r"(?<!^)(?=[A-Z])", "-", entity).lower()


def _sm_arn(req: ApiRequest, account: str, kind: str, name: str) -> str:
    if name.startswith("arn:"):
        return name
    return f"arn:aws:sagemaker:{req.region}:{account}:{kind}/{name.lower()}"


def _sagemaker_resource(req: ApiRequest, account: str, op: str) -> str:
    p = req.params
    if op == "ListModelPackages":  # authorized on the model-package resource type
        return f"arn:aws:sagemaker:{req.region}:{account}:model-package/*"
    if op == "ListTrainingJobsForHyperParameterTuningJob":  # authorized on the tuning job it lists
        return _sm_arn(req, account, "hyper-parameter-tuning-job", str(p.get("HyperParameterTuningJobName") or "*"))
    if op.startswith(("List", "Search")) and op != "ListTags":
        return "*"
    if p.get("ResourceArn"):
        return str(p["ResourceArn"])
    if p.get("ModelPackageArn"):
        return str(p["ModelPackageArn"])
    m = _SM_VERBS.match(op)
    if m is None:
        raise Unmodelled(f"SageMaker {op}: no resource type known")
    entity = m.group("entity")
    name = p.get(f"{entity}Name")
    if op == "CreateModelPackage" and not name and p.get("ModelPackageGroupName"):
        return _sm_arn(req, account, "model-package", f"{p['ModelPackageGroupName']}/*")
    if not isinstance(name, str) or not name:
        raise Unmodelled(f"SageMaker {op} without {entity}Name")
    return _sm_arn(req, account, _kebab(entity), name)


def sagemaker_checks(req: ApiRequest, account: str) -> list[Check]:
    """SageMaker ARNs (lower-cased names, as AWS builds them) and PassRole for Create*/Update*."""
    op = req.operation or ""
    if op in ("InvokeEndpoint", "InvokeEndpointAsync", "InvokeEndpointWithResponseStream"):
        parts = req.path().strip("/").split("/")
        if len(parts) < 3 or parts[0] != "endpoints":
            raise Unmodelled(f"SageMaker {op} path {req.path()!r}")
        return [Check(f"sagemaker:{op}", _sm_arn(req, account, "endpoint", parts[1]))]
    resource = _sagemaker_resource(req, account, op)
    out = [Check(f"sagemaker:{op}", resource)]
    tags = req.params.get("Tags")
    if op.startswith("Create") and isinstance(tags, list) and tags:
        # Tagging on create needs sagemaker:AddTags on the new resource as well.
        keys = [str(t.get("Key")) for t in tags if isinstance(t, dict)]
        context = {"aws:tagkeys": keys, **{f"aws:requesttag/{t.get('Key')}".lower(): [str(t.get("Value", ""))]
                                           for t in tags if isinstance(t, dict)}}
        out.append(Check("sagemaker:AddTags", resource, context))
    if op.startswith(("Create", "Update")):
        out += pass_role_checks(req.params, "sagemaker.amazonaws.com")
    return out


# --- CloudWatch Logs -----------------------------------------------------------------------------

_LOG_STREAM_OPS = {"PutLogEvents", "GetLogEvents", "DeleteLogStream", "CreateLogStream"}
_BARE_GROUP_OPS = {"CreateLogGroup", "DeleteLogGroup", "TagResource", "UntagResource", "ListTagsForResource"}


def logs_checks(req: ApiRequest, account: str) -> list[Check]:
    """Log-group ARNs (``…:log-group:NAME:*``, the bare form for create/delete) or log-stream ARNs."""
    op, p = req.operation or "", req.params
    base = f"arn:aws:logs:{req.region}:{account}:log-group:"
    if op == "DescribeLogGroups":
        return [Check("logs:DescribeLogGroups", base + "*")]
    group = p.get("logGroupName") or p.get("logGroupIdentifier")
    if not isinstance(group, str) or not group:
        names = p.get("logGroupNames") or p.get("logGroupIdentifiers")
        if isinstance(names, list) and names:
            return [Check(f"logs:{op}", _group_arn(base, str(n)) + ":*") for n in names]
        raise Unmodelled(f"CloudWatch Logs {op} without a log group")
    arn = _group_arn(base, group)
    if op in _LOG_STREAM_OPS and p.get("logStreamName"):
        return [Check(f"logs:{op}", f"{arn}:log-stream:{p['logStreamName']}")]
    return [Check(f"logs:{op}", arn if op in _BARE_GROUP_OPS else f"{arn}:*")]


def _group_arn(base: str, group: str) -> str:
    if group.startswith("arn:"):
        return group[:-2] if group.endswith(":*") else group
    return base + group


# --- IAM, STS, CloudFormation, Rekognition, CloudWatch -------------------------------------------

_IAM_NAMED = (("UserName", "user"), ("RoleName", "role"), ("GroupName", "group"), ("InstanceProfileName", "instance-profile"))


def iam_checks(req: ApiRequest, account: str, caller_arn: str | None = None) -> list[Check]:
    """IAM user/role/group/policy ARNs (the path from the existing entity or the request)."""
    op, p = req.operation or "", req.params
    if p.get("PolicyArn") and op in ("CreatePolicyVersion", "GetPolicy", "GetPolicyVersion", "DeletePolicy",
                                     "ListPolicyVersions", "DeletePolicyVersion", "SetDefaultPolicyVersion"):
        return [Check(f"iam:{op}", p["PolicyArn"])]
    if op == "CreatePolicy":
        return [Check(f"iam:{op}", f"arn:aws:iam::{account}:policy{p.get('Path', '/')}{p.get('PolicyName', '')}")]
    for param, kind in _IAM_NAMED:
        if p.get(param):
            return [Check(f"iam:{op}", _iam_arn(account, kind, p[param], p.get("Path")))]
    if op == "GetUser" and caller_arn:
        return [Check("iam:GetUser", caller_arn)]
    return [Check(f"iam:{op}", "*")]


def _iam_arn(account: str, kind: str, name: str, path: str | None) -> str:
    from moto.iam.models import iam_backends

    backend = iam_backends[account]["aws"]
    pools = {"user": backend.users.values(), "role": backend.roles.values(), "group": backend.groups.values()}
    existing = next((e for e in pools.get(kind, []) if e.name == name), None)
    chosen = existing.path if existing is not None else (path or "/")
    return f"arn:aws:iam::{account}:{kind}{chosen}{name}"


def sts_checks(req: ApiRequest, account: str) -> list[Check]:
    """``sts:AssumeRole`` on the role (the trust policy is checked by the enforcer)."""
    op, p = req.operation or "", req.params
    if op == "AssumeRole":
        ctx = {"sts:rolesessionname": [str(p.get("RoleSessionName", ""))]}
        if p.get("ExternalId"):
            ctx["sts:externalid"] = [str(p["ExternalId"])]
        return [Check("sts:AssumeRole", str(p.get("RoleArn", "")), ctx)]
    return [Check(f"sts:{op}", "*")]


def cloudformation_checks(req: ApiRequest, account: str) -> list[Check]:
    """Stack ARNs (the real stack id when the stack exists) and PassRole for a stack service role."""
    op, p = req.operation or "", req.params
    name = p.get("StackName")
    if not name:
        return [Check(f"cloudformation:{op}", "*")]
    arn = name if name.startswith("arn:") else _stack_arn(req, account, name)
    out = [Check(f"cloudformation:{op}", arn)]
    if op in ("CreateStack", "UpdateStack", "CreateChangeSet"):
        out += pass_role_checks(p, "cloudformation.amazonaws.com")
    return out


def _stack_arn(req: ApiRequest, account: str, name: str) -> str:
    from moto.cloudformation.models import cloudformation_backends

    backend = cloudformation_backends[account][req.region]
    for stack in backend.stacks.values():
        if stack.name == name and stack.status != "DELETE_COMPLETE":
            return stack.stack_id
    return f"arn:aws:cloudformation:{req.region}:{account}:stack/{name}/*"


def rekognition_checks(req: ApiRequest, account: str) -> list[Check]:
    """Rekognition authorizes on ``*``; an ``S3Object`` image is also read as the caller."""
    out = [Check(f"rekognition:{req.operation}", "*")]
    for obj in _walk(req.params, ("S3Object",)):
        if isinstance(obj, dict) and obj.get("Bucket") and obj.get("Name"):
            out.append(Check("s3:GetObject", f"arn:aws:s3:::{obj['Bucket']}/{obj['Name']}"))
    return out


def cloudwatch_checks(req: ApiRequest, account: str) -> list[Check]:
    """Metric actions on ``*`` (PutMetricData with ``cloudwatch:namespace``), alarms by ARN."""
    op, p = req.operation or "", req.params
    if op == "PutMetricData":
        ctx = {"cloudwatch:namespace": [str(p["Namespace"])]} if p.get("Namespace") else {}
        return [Check("cloudwatch:PutMetricData", "*", ctx)]
    names = [v for k, v in p.items() if k == "AlarmName" or k.startswith("AlarmNames.member.")]
    names += [str(n) for n in (p.get("AlarmNames") if isinstance(p.get("AlarmNames"), list) else [])]
    if names:
        return [Check(f"cloudwatch:{op}", f"arn:aws:cloudwatch:{req.region}:{account}:alarm:{n}") for n in names]
    if op.startswith(("List", "Get", "Describe")):
        return [Check(f"cloudwatch:{op}", "*")]
    raise Unmodelled(f"CloudWatch {op}")


# --- SNS (issue 14) -------------------------------------------------------------------------------
# As the SNS service authorization reference lists them: topic actions on the topic's ARN
# (CreateTopic on the ARN it would create), subscription actions on their topic, Publish to a topic
# or platform endpoint on that ARN and to a phone number on "*", listings on "*".

_SNS_ANY = {"ListTopics", "ListSubscriptions", "ListPlatformApplications", "CheckIfPhoneNumberIsOptedOut",
            "ListPhoneNumbersOptedOut", "GetSMSAttributes", "SetSMSAttributes", "OptInPhoneNumber",
            "GetSMSSandboxAccountStatus", "ListOriginationNumbers", "ListSMSSandboxPhoneNumbers"}


def sns_checks(req: ApiRequest, account: str) -> list[Check]:
    """Topic ARN (``TopicArn``/``TargetArn``/``ResourceArn``, ``Name`` for CreateTopic); a subscription
    ARN authorizes on its topic; phone numbers and listings on ``*``."""
    op, p = req.operation or "", req.params
    if op in _SNS_ANY or (op == "Publish" and p.get("PhoneNumber") and not (p.get("TopicArn") or p.get("TargetArn"))):
        return [Check(f"sns:{op}", "*")]
    if op == "CreateTopic" and p.get("Name"):
        return [Check("sns:CreateTopic", f"arn:aws:sns:{req.region}:{account}:{p['Name']}")]
    arn = p.get("TopicArn") or p.get("TargetArn") or p.get("ResourceArn")
    if not arn and p.get("SubscriptionArn"):
        arn = str(p["SubscriptionArn"]).rsplit(":", 1)[0]  # <topic arn>:<subscription id>
    if not arn:
        raise Unmodelled(f"SNS {op} without a topic")
    return [Check(f"sns:{op}", str(arn))]


_BUILDERS: dict[str, Callable[[ApiRequest, str], list[Check]]] = {
    "dynamodb": dynamodb_checks,
    "sagemaker": sagemaker_checks,
    "logs": logs_checks,
    "sts": sts_checks,
    "cloudformation": cloudformation_checks,
    "rekognition": rekognition_checks,
    "monitoring": cloudwatch_checks,
    "sns": sns_checks,
}


def checks(req: ApiRequest, account: str, caller_arn: str | None = None) -> list[Check]:
    """The checks a request needs; raises Unmodelled when the emulator cannot tell."""
    if req.service == "s3":
        return s3.checks(req)
    if not req.operation:
        raise Unmodelled(f"cannot tell the {req.service} operation of {req.environ.get('REQUEST_METHOD')} {req.path()}")
    if req.service == "iam":
        return iam_checks(req, account, caller_arn)
    builder = _BUILDERS.get(req.service)
    if builder is None:  # a service we do not map: only Resource "*" grants it
        return [Check(f"{prefix(req.service)}:{req.operation}", None)]
    return builder(req, account)
