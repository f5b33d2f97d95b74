"""Test helpers: load and resolve ``infra/ogiri.yaml``, collect its IAM statements, evaluate requests.

The resolver handles the intrinsic functions the template uses (Ref, Fn::GetAtt, Fn::Sub, Fn::If,
Fn::Equals in conditions) for one set of parameter values, so policies can be checked as the ARNs
AWS will see. The evaluator is a deliberately small model of IAM: an explicit Deny wins, otherwise
an Allow whose action, resource (glob match) and conditions (StringEquals, StringLike, Bool) all
match. It is enough to show that the policies allow what the pipeline does and nothing next to it.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO / "infra" / "ogiri.yaml"

ACCOUNT = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"

#: Actions AWS authorizes only on ``Resource: "*"`` that the template grants that way (documented
#: in the template next to each statement, each narrowed by a condition).
STAR_RESOURCE_ACTIONS = frozenset(
    {"rekognition:DetectLabels", "ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"}
)


def load_template() -> dict[str, Any]:
    """The template as plain data, short-form tags expanded (cfn-lint's YAML loader)."""
    from cfnlint.decode import decode_str

    template, matches = decode_str(TEMPLATE_PATH.read_text(encoding="utf-8"))
    assert not matches, f"template does not parse: {matches}"
    return json.loads(json.dumps(template))  # drop cfn-lint's node classes


@dataclass
class Resolved:
    """The template with every intrinsic function replaced by its value for ``params``."""

    params: dict[str, str]
    resources: dict[str, Any]
    outputs: dict[str, Any]
    physical: dict[str, dict[str, str]] = field(default_factory=dict)


def _physical_ids(template: dict[str, Any], params: dict[str, str], conditions: dict[str, bool]) -> dict:
    """Ref/GetAtt values of the resources, as CloudFormation would produce them."""
    ctx = {"params": params, "conditions": conditions, "physical": {}}
    res = template["Resources"]
    bucket = _resolve(res["DataBucket"]["Properties"]["BucketName"], ctx)
    table = _resolve(res["CaptionTable"]["Properties"]["TableName"], ctx)
    physical = {
        "DataBucket": {"Ref": bucket, "Arn": f"arn:{PARTITION}:s3:::{bucket}"},
        "CaptionTable": {"Ref": table, "Arn": f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{table}"},
    }
    for logical in [k for k, r in res.items() if r["Type"] == "AWS::IAM::Role"]:
        name = _resolve(res[logical]["Properties"]["RoleName"], ctx)
        physical[logical] = {"Ref": name, "Arn": f"arn:{PARTITION}:iam::{ACCOUNT}:role/{name}"}
    for logical in [k for k, r in res.items() if r["Type"] == "AWS::Lambda::Function"]:
        name = _resolve(res[logical]["Properties"]["FunctionName"], ctx)
        physical[logical] = {"Ref": name, "Arn": f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{name}"}
    topic = _resolve(res["AlertTopic"]["Properties"]["TopicName"], ctx)
    physical["AlertTopic"] = {"Ref": f"arn:{PARTITION}:sns:{REGION}:{ACCOUNT}:{topic}"}
    for logical in [k for k, r in res.items() if r["Type"] == "AWS::IAM::ManagedPolicy"]:
        policy_name = _resolve(res[logical]["Properties"]["ManagedPolicyName"], ctx)
        physical[logical] = {"Ref": f"arn:{PARTITION}:iam::{ACCOUNT}:policy/{policy_name}"}
    return physical


def resolve_template(template: dict[str, Any], overrides: dict[str, str] | None = None) -> Resolved:
    """Resolve ``template`` for its parameter defaults updated with ``overrides``."""
    params = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}
    params.update(overrides or {})
    unknown = set(overrides or {}) - set(template.get("Parameters", {}))
    assert not unknown, f"unknown parameters {unknown}"
    ctx: dict[str, Any] = {"params": params, "conditions": {}, "physical": {}}
    for name, expr in template.get("Conditions", {}).items():
        ctx["conditions"][name] = bool(_resolve(expr, ctx))
    ctx["physical"] = _physical_ids(template, params, ctx["conditions"])
    resources = {k: _resolve(v, ctx) for k, v in template["Resources"].items()}
    outputs = {k: _resolve(v["Value"], ctx) for k, v in template.get("Outputs", {}).items()}
    return Resolved(params, resources, outputs, ctx["physical"])


_PSEUDO = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": PARTITION}
_SUB = re.compile(r"\$\{([^}!][^}]*)\}")


def _ref(name: str, ctx: dict[str, Any]) -> str:
    if name in _PSEUDO:
        return _PSEUDO[name]
    if name in ctx["params"]:
        return ctx["params"][name]
    if name in ctx["physical"]:
        return ctx["physical"][name]["Ref"]
    raise KeyError(f"unresolvable Ref {name}")


def _getatt(logical: str, attr: str, ctx: dict[str, Any]) -> str:
    try:
        return ctx["physical"][logical][attr]
    except KeyError:
        raise KeyError(f"unresolvable GetAtt {logical}.{attr}") from None


def _resolve(node: Any, ctx: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_resolve(n, ctx) for n in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((key, arg),) = node.items()
        if key == "Ref":
            return _ref(arg, ctx)
        if key == "Fn::GetAtt":
            logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
            return _getatt(logical, attr, ctx)
        if key == "Fn::Sub":
            assert isinstance(arg, str), "only the string form of Fn::Sub is used"

            def repl(m: re.Match) -> str:
                name = m.group(1)
                if "." in name and not name.startswith("AWS::"):
                    return _getatt(*name.split(".", 1), ctx)
                return _ref(name, ctx)

            return _SUB.sub(repl, arg)
        if key == "Fn::If":
            cond, yes, no = arg
            return _resolve(yes if ctx["conditions"][cond] else no, ctx)
        if key == "Fn::Equals":
            a, b = (_resolve(x, ctx) for x in arg)
            return str(a) == str(b)
        if key.startswith("Fn::"):
            raise NotImplementedError(f"resolver does not handle {key}")
    return {k: _resolve(v, ctx) for k, v in node.items()}


# ---------------------------------------------------------------- statements


@dataclass(frozen=True)
class Statement:
    """One policy statement with Action/Resource normalised to tuples."""

    owner: str  #: ``<logical id>/<policy name>``
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    condition: dict[str, Any]
    raw: dict[str, Any]


def _as_tuple(value: Any) -> tuple:
    if value is None:
        return ()
    return tuple(value) if isinstance(value, list) else (value,)


def statements_of(document: dict[str, Any], owner: str) -> list[Statement]:
    """The statements of one policy document."""
    return [
        Statement(
            owner=owner,
            effect=s["Effect"],
            actions=_as_tuple(s.get("Action")),
            resources=_as_tuple(s.get("Resource")),
            condition=s.get("Condition") or {},
            raw=s,
        )
        for s in _as_tuple(document.get("Statement"))
    ]


def identity_policies(resources: dict[str, Any]) -> dict[str, list[Statement]]:
    """Identity-based statements per role logical id (inline policies + attached managed policies).

    A managed policy attached to no role (the producer's) is listed under its own logical id.
    """
    per_role: dict[str, list[Statement]] = {}
    for logical, res in resources.items():
        if res["Type"] == "AWS::IAM::Role":
            per_role.setdefault(logical, [])
            for pol in res["Properties"].get("Policies", []):
                per_role[logical] += statements_of(pol["PolicyDocument"], f"{logical}/{pol['PolicyName']}")
    for logical, res in resources.items():
        if res["Type"] in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
            stmts = statements_of(res["Properties"]["PolicyDocument"], logical)
            role_names = res["Properties"].get("Roles", [])
            if not role_names:
                per_role[logical] = stmts
            for role_logical, role in resources.items():
                if role["Type"] == "AWS::IAM::Role" and role["Properties"].get("RoleName") in role_names:
                    per_role[role_logical] += stmts
    return per_role


def all_policy_statements(resources: dict[str, Any]) -> list[Statement]:
    """Every permission statement in the template: identity policies and bucket policies."""
    out: list[Statement] = []
    for logical, res in resources.items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::IAM::Role":
            for pol in props.get("Policies", []):
                out += statements_of(pol["PolicyDocument"], f"{logical}/{pol['PolicyName']}")
        elif res["Type"] in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy", "AWS::S3::BucketPolicy"):
            out += statements_of(props["PolicyDocument"], logical)
    return out


# ---------------------------------------------------------------- evaluation


def _glob(pattern: str, value: str, *, case: bool) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case else re.IGNORECASE) is not None


def _condition_ok(condition: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, pairs in condition.items():
        for key, wanted in pairs.items():
            values = [str(v) for v in _as_tuple(wanted)]
            actual = context.get(key)
            if actual is None:
                return False
            if operator == "StringEquals" and actual not in values:
                return False
            if operator == "StringLike" and not any(fnmatch.fnmatchcase(actual, v) for v in values):
                return False
            if operator == "Bool" and actual.lower() not in [v.lower() for v in values]:
                return False
            if operator not in ("StringEquals", "StringLike", "Bool"):
                raise NotImplementedError(f"condition operator {operator}")
    return True


def _matches(stmt: Statement, action: str, resource: str, context: dict[str, str]) -> bool:
    return (
        any(_glob(a, action, case=False) for a in stmt.actions)
        and any(_glob(r, resource, case=True) for r in stmt.resources)
        and _condition_ok(stmt.condition, context)
    )


def is_allowed(
    statements: list[Statement], action: str, resource: str, context: dict[str, str] | None = None
) -> bool:
    """Whether ``statements`` allow ``action`` on ``resource`` (explicit Deny wins)."""
    ctx = {"aws:RequestedRegion": REGION, "aws:SecureTransport": "true", **(context or {})}
    if any(s.effect == "Deny" and _matches(s, action, resource, ctx) for s in statements):
        return False
    return any(s.effect == "Allow" and _matches(s, action, resource, ctx) for s in statements)
