"""Endpoint smoke test (real invocations with held-out images) and rollback to the previous config."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

#: Tokens a sane caption never shows (a decoder leaking its specials is broken).
SPECIAL_TOKENS = ("<unk>", "<pad>", "<bos>", "<eos>", "<s>", "</s>", "[UNK]", "[PAD]", "\ufffd")


def vocabulary_of(captions: Iterable[str]) -> frozenset[str]:
    """The character vocabulary of ``captions`` (Japanese captions have no spaces: characters it is)."""
    return frozenset(ch for caption in captions for ch in caption if not ch.isspace())


def caption_problems(caption: Any, vocabulary: frozenset[str] | None, max_chars: int = 280) -> list[str]:
    """Why ``caption`` is not a sane caption (empty list when it is)."""
    if not isinstance(caption, str):
        return [f"caption is {type(caption).__name__}, not text"]
    text = caption.strip()
    if not text:
        return ["caption is empty"]
    problems = []
    if len(text) > max_chars:
        problems.append(f"caption has {len(text)} characters (> {max_chars})")
    leaked = [t for t in SPECIAL_TOKENS if t in text]
    if leaked:
        problems.append(f"caption contains special tokens {leaked}")
    if vocabulary:
        unknown = sorted({ch for ch in text if not ch.isspace() and ch not in vocabulary})
        if unknown:
            problems.append(f"caption uses characters outside the training vocabulary: {''.join(unknown[:10])!r}")
    return problems


@dataclass
class SmokeResult:
    """Outcome of :func:`smoke_test`."""

    endpoint_name: str
    ok: bool
    failures: list[str] = field(default_factory=list)
    captions: list[dict[str, Any]] = field(default_factory=list)
    max_latency_s: float = 0.0
    mean_latency_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (XCom friendly)."""
        return asdict(self)


def smoke_test(
    runtime_client: Any,
    endpoint_name: str,
    samples: Sequence[tuple[str, bytes]],
    *,
    vocabulary: frozenset[str] | None,
    max_latency_s: float,
) -> SmokeResult:
    """Invoke the endpoint once per ``(id, image bytes)`` sample (``application/json`` with
    ``image_b64``, see docs/interfaces.md) and check every answer and its latency."""
    if not samples:
        raise ValueError("smoke test needs at least one held-out image")
    result = SmokeResult(endpoint_name=endpoint_name, ok=False)
    latencies = []
    for sample_id, body in samples:
        request = json.dumps({"image_b64": base64.b64encode(body).decode("ascii")})
        started = time.perf_counter()
        try:
            response = runtime_client.invoke_endpoint(
                EndpointName=endpoint_name, ContentType="application/json", Accept="application/json", Body=request
            )
            payload = json.loads(response["Body"].read().decode("utf-8"))
        except Exception as exc:  # any error answering is a smoke failure, reported with its cause
            result.failures.append(f"{sample_id}: invocation failed: {exc}")
            continue
        finally:
            latencies.append(time.perf_counter() - started)
        caption = payload.get("caption") if isinstance(payload, dict) else None
        problems = caption_problems(caption, vocabulary)
        result.captions.append({"id": sample_id, "caption": caption, "latency_s": round(latencies[-1], 3)})
        result.failures.extend(f"{sample_id}: {p}" for p in problems)
        if latencies[-1] > max_latency_s:
            result.failures.append(f"{sample_id}: latency {latencies[-1]:.2f}s > {max_latency_s:.2f}s")
    result.max_latency_s = round(max(latencies), 3)
    result.mean_latency_s = round(sum(latencies) / len(latencies), 3)
    result.ok = not result.failures
    return result
