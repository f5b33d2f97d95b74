"""The hostile corpus through the whole ``ogiri_ingest`` DAG: no row crashes the run, every one lands
in the rejects file with its reason, refused addresses never see a request, and a rerun of the
partition writes a byte-identical rejects file (issue 12)."""

from __future__ import annotations

import csv
import io
import struct
import zlib

import pytest
from hostile_servers import HostileServer
from ingest_dag_env import load_dag, run_dag
from PIL import Image

from ogiri.ledger import Ledger


@pytest.fixture
def account(stack_account):
    """This module's DAG runs are made as the template's principals (worker, producer), IAM enforced."""
    return stack_account


def _img(mode: str, fmt: str, size=(48, 32), color=None) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color if color is not None else (0, 255, 255, 0) if mode == "CMYK" else 90).save(
        buf, format=fmt
    )
    return buf.getvalue()


def _png_bomb(side: int) -> bytes:
    """A 1-bit PNG declaring side x side pixels of zeros (tiny on the wire)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    row = b"\0" * (1 + (side + 7) // 8)
    idat = zlib.compress(row * side, 9)
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.slow
def test_hostile_corpus_through_the_dag(account, site, airflow_db, dag_bundle, monkeypatch):
    with HostileServer() as srv:
        port = srv.host_port.rsplit(":", 1)[1]
        monkeypatch.setenv("OGIRI_PRIVATE_HOST_ALLOWLIST", f"{site.server.allowlist_entry},{srv.host_port}")
        monkeypatch.setenv("OGIRI_MAX_IMAGE_PIXELS", "1000000")
        jpeg = _img("RGB", "JPEG", color=(200, 30, 30))
        srv.add("/ok.jpg", jpeg, "image/jpeg")
        srv.add("/cmyk.jpg", _img("CMYK", "JPEG"), "image/jpeg")
        srv.add("/grey.png", _img("L", "PNG"), "image/png")
        srv.add("/page.html", b"<html>hello</html>", "text/html")
        srv.add("/trunc.jpg", jpeg[: len(jpeg) // 2], "image/jpeg")
        srv.add("/bomb.png", _png_bomb(4000), "image/png")  # 16 Mpixel > 1 Mpixel limit
        srv.add("/404.jpg", b"nope", status=404)
        srv.add("/500.jpg", b"boom", status=500)
        srv.redirect("/to-metadata", "http://169.254.169.254/latest/meta-data/")
        srv.redirect("/to-loopback", "http://127.0.0.1:9/secret")
        srv.redirect("/loop-a", "/loop-b")
        srv.redirect("/loop-b", "/loop-a")
        srv.stream("/huge.jpg", 50 * 1024 * 1024)
        srv.short_body("/short.jpg")
        other_port = srv.port + 1 if srv.port < 65535 else srv.port - 1
        u = srv.url
        rows = [
            (u("/ok.jpg"), "正常"),
            (u("/cmyk.jpg"), "CMYK は変換して受け入れ"),
            (u("/grey.png"), "グレースケールも受け入れ"),
            ("file:///etc/passwd", "file"),
            ("gopher://example.com/1", "gopher"),
            ("ftp://example.com/a.jpg", "ftp"),
            ("http://127.0.0.1/latest", "loopback"),
            ("http://[::1]/x.jpg", "ipv6 loopback"),
            ("http://169.254.169.254/latest/meta-data/", "metadata"),
            (f"http://2130706433:{port}/never-decimal.jpg", "decimal IP of the test server"),
            (f"http://0177.0.0.1:{port}/never-octal.jpg", "octal IP of the test server"),
            (f"http://0x7f000001:{port}/never-hex.jpg", "hex IP of the test server"),
            (f"http://localhost:{port}/never-name.jpg", "name of the test server, not allow-listed"),
            (u("/to-metadata"), "redirect to metadata"),
            (u("/to-loopback"), "redirect to loopback"),
            (u("/loop-a"), "redirect loop"),
            (u("/404.jpg"), "404"),
            (u("/500.jpg"), "500"),
            (u("/huge.jpg"), "50 MB"),
            (u("/page.html"), "html"),
            (u("/trunc.jpg"), "truncated"),
            (u("/bomb.png"), "bomb"),
            (u("/ok.jpg"), "x" * 1_000_000),  # 1 MB caption
            (u("/ok.jpg"), "red \x1b[31malert"),  # terminal escape
            (u("/ok.jpg"), "cat \u202egpj.exe"),  # bidi override
            (u("/ok.jpg"), "\u200b\u200d\u2060"),  # nothing visible
            (u("/short.jpg"), "short body"),
            (f"s3://{account.bucket}/staging/ingest/secret.jsonl", "staging is not a source"),
            (f"http://127.0.0.1:{other_port}/x.jpg", "allow-listed host, other port"),
            (u("/ok.jpg"), "=HYPERLINK(\"http://x\")"),  # formula-leading: stored verbatim
        ]
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        body = buf.getvalue().encode() + b"a,b,c\n" + u("/ok.jpg").encode() + b",bad \xff\xfe utf8\n"
        account.put_csv("landing/dt=2026-03-01/hostile.csv", body)

        dag = load_dag()
        dr, states = run_dag(dag, 2, partition_date="2026-03-01")
        assert dr.state == "success", states
        assert all(s == ["success"] * len(s) for s in states.values()), states

        row = Ledger.from_connection().ingest_runs_for("2026-03-01")[0]
        assert (row["rows_in"], row["accepted"], row["rejected"]) == (32, 4, 28), row
        rejects_key = "rejects/dt=2026-03-01/ogiri_ingest_2026-03-01.jsonl"
        first = account.clients.s3.get_object(Bucket=account.bucket, Key=rejects_key)["Body"].read()
        rejects = {r["line"]: r for r in account.read_jsonl(rejects_key)}
        reasons = [rejects[line]["reason"] for line in sorted(rejects)]
        assert reasons == [
            "scheme_not_allowed",
            "scheme_not_allowed",
            "scheme_not_allowed",
            "host_refused",
            "host_refused",
            "host_refused",
            "host_refused",
            "host_refused",
            "host_refused",
            "host_refused",
            "host_refused",
            "host_refused",
            "redirect_loop",
            "http_error",
            "http_error",
            "too_large",
            "not_an_image",
            "truncated_image",
            "decompression_bomb",
            "caption_too_long",
            "caption_control_character",
            "caption_bidi_control",
            "caption_invisible",
            "short_read",
            "s3_source_not_allowed",
            "host_refused",
            "column_count",
            "invalid_utf8",
        ]
        assert f"port {other_port} is not allow-listed" in rejects[29]["detail"]
        assert " object at 0x" not in first.decode()  # no object addresses (they differ in every process)
        assert len(rejects[23]["caption"] or rejects[23]["raw"] or "") < 1000  # the 1 MB caption is clipped
        # Refused spellings of the test server's own address never reached it.
        assert not [p for p in srv.paths if "never" in p or "secret" in p]
        assert "/to-metadata" in srv.paths and "/ok.jpg" in srv.paths

        # A rerun of the partition (a backfill, a cleared run) rewrites the same rejects, byte for byte.
        dr, states = run_dag(dag, 3, partition_date="2026-03-01")
        assert dr.state == "success", states
        again = account.clients.s3.get_object(Bucket=account.bucket, Key=rejects_key)["Body"].read()
        assert again == first
    captions = sorted(i["Caption"]["S"] for i in account.items() if i["IngestDate"]["S"] == "2026-03-01")
    assert len(captions) == 4 and '=HYPERLINK("http://x")' in captions
