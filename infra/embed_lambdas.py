"""Copy ``include/labeling/*.py`` into the inline ``ZipFile`` code of the template's labeling Lambdas.

Run after editing a handler: ``python infra/embed_lambdas.py`` (``tests/infra`` fails while the copies
differ). Inline code keeps deployment to one template (no code bucket); each handler must stay within
CloudFormation's 4,096 characters.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "infra" / "ogiri.yaml"
FUNCTIONS = {"PreAnnotationFunction": "pre_annotation.py", "ConsolidationFunction": "consolidation.py"}
_MARK = "        ZipFile: |\n"
_END = re.compile(r"\n\n(  [A-Za-z]|Outputs:)")


def embed(text: str) -> str:
    """The template ``text`` with each function's code replaced by its file (indented 10)."""
    for logical, name in FUNCTIONS.items():
        code = (REPO / "include" / "labeling" / name).read_text(encoding="utf-8")
        if len(code) > 4096:
            raise SystemExit(f"{name} is {len(code)} characters; inline Lambda code may hold 4,096")
        start = text.index(_MARK, text.index(f"\n  {logical}:\n")) + len(_MARK)
        end = _END.search(text, start).start()
        body = "\n".join(" " * 10 + line if line.strip() else "" for line in code.splitlines())
        text = text[:start] + body + text[end:]
    return text


if __name__ == "__main__":
    TEMPLATE.write_text(embed(TEMPLATE.read_text(encoding="utf-8")), encoding="utf-8")
