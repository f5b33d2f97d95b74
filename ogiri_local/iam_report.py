"""The IAM replay of a local run: every call the template's principals made, what enforcement
denied, and which granted actions no call used (read from the emulator's call log and its IAM).

A granted action that a run did not use is not necessarily superfluous: retries, rollbacks, Stop
on kill and updates have their own paths. The report lists them so that each can be named.
"""

from __future__ import annotations

import ast
import json
import urllib.parse
import urllib.request
from typing import Any


def calls(emulator_url: str) -> list[dict[str, Any]]:
    """``GET /_localaws/iam/calls``: one entry per (principal, action)."""
    with urllib.request.urlopen(f"{emulator_url}/_localaws/iam/calls", timeout=10) as resp:
        return json.loads(resp.read())["calls"]


def granted_actions(iam: Any, principal_arn: str) -> set[str]:
    """The actions the principal's identity policies allow (inline and attached), lower-cased."""
    kind, _, name = principal_arn.split(":", 5)[-1].partition("/")
    name = name.rsplit("/", 1)[-1]
    if kind == "user":
        inline = [iam.get_user_policy(UserName=name, PolicyName=p)["PolicyDocument"]
                  for p in iam.list_user_policies(UserName=name)["PolicyNames"]]
        attached = iam.list_attached_user_policies(UserName=name)["AttachedPolicies"]
    elif kind == "role":
        inline = [iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"]
                  for p in iam.list_role_policies(RoleName=name)["PolicyNames"]]
        attached = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
    else:
        return set()
    documents = inline + [_default_version(iam, a["PolicyArn"]) for a in attached]
    return {action.lower() for doc in documents for action in _allowed(doc)}


def _default_version(iam: Any, arn: str) -> Any:
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    return iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]


def _allowed(document: Any) -> list[str]:
    doc = _parse(document) if isinstance(document, str) else document
    statements = doc.get("Statement", [])
    out: list[str] = []
    for st in statements if isinstance(statements, list) else [statements]:
        if st.get("Effect") == "Allow" and "Action" in st:
            out.extend([st["Action"]] if isinstance(st["Action"], str) else st["Action"])
    return out


def _parse(text: str) -> Any:
    """A policy document as IAM returns it: JSON (moto keeps a template's inline policies as the
    Python literal CloudFormation handed it, so that is read too)."""
    try:
        return json.loads(urllib.parse.unquote(text))
    except ValueError:
        return ast.literal_eval(text)


def report(emulator_url: str, iam: Any) -> dict[str, dict[str, Any]]:
    """Per principal: calls, denied actions, used actions and granted-but-unused actions."""
    by_principal: dict[str, list[dict[str, Any]]] = {}
    for entry in calls(emulator_url):
        by_principal.setdefault(entry["principal"], []).append(entry)
    out = {}
    for principal, entries in sorted(by_principal.items()):
        used = {e["action"].lower() for e in entries if e["allowed"]}
        out[principal] = {
            "calls": sum(e["allowed"] + e["denied"] for e in entries),
            "denied": sorted(e["action"] for e in entries if e["denied"]),
            "used": sorted(used),
            "unused": sorted(granted_actions(iam, principal) - used),
        }
    return out


def print_report(result: dict[str, dict[str, Any]]) -> None:
    """The demo summary's IAM section."""
    print("IAM replay (every call of this run, evaluated against the template's policies):")
    for principal, r in result.items():
        print(f"  {principal.split(':', 5)[-1]}: {r['calls']} calls, {len(r['used'])} actions, "
              f"denied: {', '.join(r['denied']) or 'none'}")
        if r["unused"]:
            print(f"    granted, not used by this run: {', '.join(r['unused'])}")
