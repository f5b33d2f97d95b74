"""The emulator process: readiness, loopback-only binding, reset, SageMaker instance types, signals."""

from __future__ import annotations

import io
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from PIL import Image, ImageDraw

from localaws.instance_types import is_valid_instance_type

REPO = Path(__file__).resolve().parents[2]
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
sys.path.insert(0, str(Path(__file__).with_name("fixtures")))
from sm_helpers import make_role  # noqa: E402

IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1-cpu-py310"


def test_health_and_ready_line(emulator):
    with urllib.request.urlopen(f"{emulator.url}/_localaws/health", timeout=5) as r:
        assert r.status == 200
        assert json.load(r) == {"status": "ok"}
    assert f"localaws listening on {emulator.url}\n" in emulator.log_path.read_text()


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of LISTEN sockets on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if int(port_hex, 16) == port and fields[3] == "0A":  # 0A = LISTEN
                found.add(address)
    return found


def _refused(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return False
    except OSError:
        return True


def _non_loopback_address() -> str | None:
    """An address of this machine outside 127/8, if it has one (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1; connect() on UDP only picks a route
            addr = s.getsockname()[0]
        except OSError:
            return None
    return None if addr.startswith("127.") or addr == "0.0.0.0" else addr


def test_binds_only_127_0_0_1(emulator):
    if Path("/proc/net/tcp").exists():
        assert _listening_addresses(emulator.port) == {"0100007F"}  # 127.0.0.1, little-endian hex
    assert not _refused("127.0.0.1", emulator.port)
    # A server on 0.0.0.0 would answer on every loopback address and on the machine's own IP.
    assert _refused("127.0.0.2", emulator.port)
    other = _non_loopback_address()
    if other is not None:
        assert _refused(other, emulator.port)


def _red_png() -> bytes:
    img = Image.new("RGB", (120, 120), "white")
    ImageDraw.Draw(img).ellipse((20, 20, 100, 100), fill=(220, 20, 20))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _endpoint_config(sagemaker, name: str, instance_type: str, model: str = "captioner") -> None:
    sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": model,
                "InitialInstanceCount": 1,
                "InstanceType": instance_type,
            }
        ],
    )


def test_reset_keeps_extensions(aws):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="before-reset")
    aws.reset()
    assert s3.list_buckets()["Buckets"] == []  # the reset really dropped state
    labels = [
        lb["Name"] for lb in aws.client("rekognition").detect_labels(Image={"Bytes": _red_png()})["Labels"]
    ]
    assert "Red" in labels and "Mobile Phone" not in labels  # moto's canned answer is gone
    sagemaker = aws.client("sagemaker")
    make_role(aws.client("iam"), "SageMakerRole")  # after the reset, which drops IAM too
    sagemaker.create_model(ModelName="captioner", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": IMAGE})
    _endpoint_config(sagemaker, "after-reset", "ml.g5.xlarge")
    described = sagemaker.describe_endpoint_config(EndpointConfigName="after-reset")
    assert described["ProductionVariants"][0]["InstanceType"] == "ml.g5.xlarge"


@pytest.mark.parametrize(
    ("instance_type", "ok"),
    [
        ("ml.g5.xlarge", True),
        ("ml.g6e.12xlarge", True),
        ("ml.p4d.24xlarge", True),
        ("ml.m5.large", True),
        ("local", False),  # the SageMaker SDK's local mode; the service refuses it
        ("local_gpu", False),
        ("ml.zz99.huge", False),  # well formed, not a real type
        ("ml.g5", False),
        ("g5.xlarge", False),
        ("ml.G5.xlarge", False),
        ("", False),
    ],
)
def test_instance_type_pattern(instance_type, ok):
    assert is_valid_instance_type(instance_type) is ok


def test_endpoint_config_accepts_current_instance_types(aws):
    make_role(aws.client("iam"), "SageMakerRole")
    sagemaker = aws.client("sagemaker")
    sagemaker.create_model(ModelName="captioner", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": IMAGE})
    for i, instance_type in enumerate(("ml.g5.2xlarge", "ml.g6.xlarge", "ml.inf2.xlarge", "ml.m5.large")):
        _endpoint_config(sagemaker, f"cfg-{i}", instance_type)
    for bad in ("gpu-please", "ml.zz99.huge", "local"):
        with pytest.raises(ClientError) as info:
            _endpoint_config(sagemaker, f"cfg-{bad.replace('.', '-')}", bad)
        error = info.value.response["Error"]
        assert error["Code"] == "ValidationException"
        assert error["Message"].startswith(
            f"1 validation error detected: Value '{bad}' at 'productionVariants.1.member.instanceType' "
            "failed to satisfy constraint: Member must satisfy enum value set: ["
        )


def test_each_job_api_checks_its_own_instance_type_enum(aws):
    make_role(aws.client("iam"), "SageMakerRole")
    """Issue 11: per-API enums from the service model (ml.c5.large serves endpoints but is not a
    training type), checked before any lookup, with AWS's wording."""
    from localaws.instance_types import PROCESSING, TRAINING, TRANSFORM, is_valid_instance_type

    assert is_valid_instance_type("ml.c5.large", "ProductionVariantInstanceType")
    assert not is_valid_instance_type("ml.c5.large", TRAINING)
    assert is_valid_instance_type("ml.g5.xlarge", TRAINING) and is_valid_instance_type("ml.m5.xlarge", PROCESSING)
    assert is_valid_instance_type("ml.m5.xlarge", TRANSFORM) and not is_valid_instance_type("ml.zz99.huge", TRANSFORM)
    sagemaker = aws.client("sagemaker")
    with pytest.raises(ClientError) as info:
        sagemaker.create_training_job(
            TrainingJobName="bad-type",
            AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
            RoleArn=ROLE,
            OutputDataConfig={"S3OutputPath": "s3://nowhere/out/"},
            ResourceConfig={"InstanceType": "ml.zz99.huge", "InstanceCount": 1, "VolumeSizeInGB": 10},
            StoppingCondition={"MaxRuntimeInSeconds": 60},
        )
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert "Value 'ml.zz99.huge' at 'resourceConfig.instanceType'" in info.value.response["Error"]["Message"]


# --- the CLI as its own process ------------------------------------------------------------------


def _start(args: list[str], **env: str) -> subprocess.Popen:
    full_env = dict(os.environ, PYTHONPATH=str(REPO), **env)
    full_env.pop("LOCALAWS_HOME", None)
    return subprocess.Popen(
        [sys.executable, "-m", "localaws", *args],
        cwd=REPO,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        bufsize=0,
    )


def _read_until(proc: subprocess.Popen, needle: str, timeout: float = 30.0) -> str:
    """Output of ``proc`` up to (at least) ``needle`` (fails on exit or timeout)."""
    seen = b""
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and needle.encode() not in seen:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            chunk = os.read(fd, 65536)  # unbuffered: select() and the data agree
            if not chunk:
                break
            seen += chunk
    if needle.encode() in seen:
        return seen.decode()
    proc.kill()
    proc.wait()
    pytest.fail(f"no {needle!r} from the emulator; output so far:\n{seen.decode()}")


def test_cli_env_faults_home_and_sigterm(tmp_path):
    from ogiri_local.emulator import free_port

    port = free_port()
    home = tmp_path / "new-home"
    rule = {"service": "sts", "operation": "GetCallerIdentity", "error": "Throttling", "count": 1}
    proc = _start(
        ["serve", "--host", "127.0.0.1", "--port", str(port), "--home", str(home)],
        LOCALAWS_FAULTS=json.dumps([rule]),
    )
    try:
        out = _read_until(proc, "localaws listening on")
        assert f"localaws listening on http://127.0.0.1:{port}" in out
        assert home.is_dir()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_localaws/faults", timeout=5) as r:
            (loaded,) = json.load(r)["rules"]
        assert (loaded["operation"], loaded["remaining"]) == ("GetCallerIdentity", 1)
        import boto3
        from botocore.config import Config

        sts = boto3.client(
            "sts",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            config=Config(retries={"total_max_attempts": 1}),
        )
        with pytest.raises(ClientError, match="Throttling"):
            sts.get_caller_identity()
        assert sts.get_caller_identity()["Account"]
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert b"localaws stopped" in rest
    assert _refused("127.0.0.1", port)


def test_cli_refuses_bad_fault_env():
    proc = _start(["serve", "--port", "0"], LOCALAWS_FAULTS='[{"service": "s3"}]')
    out = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 2
    assert "LOCALAWS_FAULTS" in out and "error" in out


def test_cli_reports_port_in_use(emulator):
    proc = _start(["serve", "--host", "127.0.0.1", "--port", str(emulator.port)])
    out = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{emulator.port}" in out


def test_model_and_endpoint_config_names_cannot_be_reused(aws):
    make_role(aws.client("iam"), "SageMakerRole")
    """Issue 11: AWS refuses a second CreateModel / CreateEndpointConfig of a name in use (moto
    replaced the first one silently, so a re-created config could hide a real failure)."""
    sagemaker = aws.client("sagemaker")
    sagemaker.create_model(ModelName="twice", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": IMAGE})
    with pytest.raises(ClientError) as info:
        sagemaker.create_model(ModelName="twice", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": IMAGE})
    assert info.value.response["Error"] == {
        "Code": "ValidationException",
        "Message": 'Cannot create already existing model "arn:aws:sagemaker:us-east-1:123456789012:model/twice".',
    }
    _endpoint_config(sagemaker, "cfg-twice", "ml.m5.large", model="twice")
    with pytest.raises(ClientError) as info:
        _endpoint_config(sagemaker, "cfg-twice", "ml.m5.large", model="twice")
    assert info.value.response["Error"]["Message"] == (
        'Cannot create already existing endpoint configuration '
        '"arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/cfg-twice".'
    )
