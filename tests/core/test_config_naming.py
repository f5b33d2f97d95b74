"""Settings come from OGIRI_* lazily; resource names are deterministic and valid for SageMaker."""

from __future__ import annotations

import re

import pytest

from ogiri.config import ConfigError, get_settings
from ogiri.naming import MAX_NAME_LEN, resource_name, run_key

SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")


def test_defaults_without_environment(monkeypatch):
    for var in ("OGIRI_BUCKET", "OGIRI_TABLE", "OGIRI_AWS_CONN_ID", "OGIRI_LEDGER_CONN_ID"):
        monkeypatch.delenv(var, raising=False)
    s = get_settings()
    assert (s.bucket, s.table, s.aws_conn_id, s.ledger_conn_id) == (
        "ogiri-mlops",
        "ogiri-captions",
        "aws_default",
        "ogiri_ledger",
    )
    assert s.private_host_allowlist == ()


def test_environment_is_read_at_call_time(monkeypatch):
    monkeypatch.setenv("OGIRI_BUCKET", "team-bucket")
    monkeypatch.setenv("OGIRI_REKOGNITION_TPS", "2.5")
    monkeypatch.setenv("OGIRI_PRIVATE_HOST_ALLOWLIST", "127.0.0.1:8001, 127.0.0.1:8002")
    monkeypatch.setenv("OGIRI_INSTANCE_PRICES", '{"ml.g5.xlarge": 1.5}')
    s = get_settings()
    assert s.bucket == "team-bucket"
    assert s.rekognition_tps == 2.5
    assert s.private_host_allowlist == ("127.0.0.1:8001", "127.0.0.1:8002")
    assert s.price_per_hour("ml.g5.xlarge") == 1.5
    assert s.price_per_hour("ml.unknown") is None
    assert s.s3_uri("/images/a.jpg") == "s3://team-bucket/images/a.jpg"


@pytest.mark.parametrize(
    ("var", "value"),
    [("OGIRI_REKOGNITION_TPS", "fast"), ("OGIRI_MAX_IMAGE_BYTES", "1.5"), ("OGIRI_INSTANCE_PRICES", "[1]")],
)
def test_bad_values_name_the_variable(monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=var):
        get_settings()


def test_run_key_uses_date_for_scheduled_and_run_id_for_manual():
    date = "2026-11-21T00:00:00+00:00"
    assert run_key("d", "scheduled__x", date) == run_key("d", "backfill__y", date) == f"d:{date}"
    assert run_key("d", "manual__1", date) != run_key("d", "manual__2", date)


@pytest.mark.parametrize("suffix", ["", "eval", "cfg"])
def test_resource_names_are_valid_deterministic_and_distinct(suffix):
    keys = [f"ogiri_train:manual__2026-11-21T03:04:05.{i:06d}+00:00" for i in range(50)]
    names = [resource_name("ogiri-train", k, suffix=suffix) for k in keys]
    assert names == [resource_name("ogiri-train", k, suffix=suffix) for k in keys]
    assert len(set(names)) == len(names), "truncation must not make run keys collide"
    for name in names:
        assert len(name) <= MAX_NAME_LEN
        assert SAGEMAKER_NAME.match(name), name
