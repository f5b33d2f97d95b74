"""S3 ``PutObject`` made atomic per key, so conditional writes (``If-None-Match: *``) hold as on S3.

moto checks the precondition and then stores the object as two steps, and two overlapping puts of
one key can both pass the check (the later one then replaces the earlier, whose response fails
with a 500 because its buffer was closed under it). S3 instead lets the first conditional write to
finish win and answers every later one ``412 PreconditionFailed`` (``Condition: If-None-Match``),
and overlapping unconditional puts all succeed, the last one winning.

``install()`` wraps ``S3Response.put_object`` so every ``PutObject`` of a key runs alone (one of
:data:`STRIPES` locks, chosen by bucket and key; puts of other keys still run in parallel).

Not modelled: ``409 ConditionalRequestConflict``, which S3 returns when a conflicting operation
(for example a delete of the key) lands while a conditional write is in flight; here such a
delete simply runs before or after the write. Conditional ``CompleteMultipartUpload`` and
``CopyObject`` keep moto's own (non-atomic) check.
"""

from __future__ import annotations

import threading
import zlib
from typing import Any

STRIPES = 64
_LOCKS = [threading.Lock() for _ in range(STRIPES)]


def key_lock(bucket: str, key: str) -> threading.Lock:
    """The lock that serialises writes of ``bucket``/``key``."""
    return _LOCKS[zlib.crc32(f"{bucket}/{key}".encode()) % STRIPES]


def install() -> None:
    """Patch moto's S3 so each key's ``PutObject`` calls run one at a time (idempotent)."""
    from moto.s3.responses import S3Response

    original = S3Response.put_object
    if getattr(original, "_localaws_atomic", False):
        return

    def put_object(self: Any) -> Any:
        with key_lock(self.bucket_name, self.parse_key_name()):
            return original(self)

    put_object._localaws_atomic = True  # type: ignore[attr-defined]
    S3Response.put_object = put_object  # type: ignore[method-assign]
