"""``aws:SecureTransport`` follows the real transport: the template's TLS-only bucket policy denies
plain-HTTP calls (as on AWS), and ``serve --tls`` is how a correct run passes it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from ogiri_local.emulator import free_port

sys.path.insert(0, str(Path(__file__).with_name("fixtures")))
from iam_helpers import allow, user_with  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BUCKET = "tls-bucket"
TLS_ONLY = {  # DataBucketPolicy of infra/ogiri.yaml
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ],
}


def _seed(admin_s3) -> None:
    admin_s3.create_bucket(Bucket=BUCKET)
    admin_s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(TLS_ONLY))
    admin_s3.put_object(Bucket=BUCKET, Key="landing/x", Body=b"ok")


def test_tls_only_bucket_policy_denies_plain_http(aws):
    _seed(aws.client("s3"))
    reader = user_with(aws, allow("s3:GetObject", f"arn:aws:s3:::{BUCKET}/*"), name="http-reader")
    with pytest.raises(ClientError) as e:
        reader.client("s3").get_object(Bucket=BUCKET, Key="landing/x")
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    assert "with an explicit deny in a resource-based policy" in e.value.response["Error"]["Message"]
    assert aws.client("s3").get_object(Bucket=BUCKET, Key="landing/x")["Body"].read() == b"ok"  # admin


class _TlsEmulator:
    """``python -m localaws serve --enforce-iam`` with ``LOCALAWS_TLS=1`` (flag and env both used)."""

    def __init__(self, home: Path):
        port = free_port()
        env = dict(os.environ, LOCALAWS_TLS="1", PYTHONPATH=str(REPO))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "localaws", "serve", "--port", str(port), "--home", str(home), "--enforce-iam"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.url = f"https://127.0.0.1:{port}"
        self.ca = home / "tls" / "cert.pem"
        for line in self.proc.stdout:  # the ready line comes once the socket listens
            if line.startswith("localaws listening on"):
                assert line.strip() == f"localaws listening on {self.url}"
                return
        raise RuntimeError("emulator exited before it was ready")

    def client(self, service: str, **kwargs):
        kwargs.setdefault("aws_access_key_id", "testing")
        kwargs.setdefault("aws_secret_access_key", "testing")
        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1", verify=str(self.ca), **kwargs)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=15)
        self.proc.stdout.close()


def test_tls_emulator_lets_a_correct_run_through_the_tls_only_policy(tmp_path):
    emu = _TlsEmulator(tmp_path)
    try:
        import ssl

        state = urllib.request.urlopen(
            f"{emu.url}/_localaws/iam", context=ssl.create_default_context(cafile=str(emu.ca)), timeout=10
        )
        assert json.load(state) == {"enforce": True}  # --enforce-iam
        _seed(emu.client("s3"))
        iam = emu.client("iam")
        iam.create_user(UserName="tls-reader")
        iam.put_user_policy(UserName="tls-reader", PolicyName="p", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [allow("s3:GetObject", f"arn:aws:s3:::{BUCKET}/landing/*")]}))  # fmt: skip
        key = iam.create_access_key(UserName="tls-reader")["AccessKey"]
        s3 = emu.client("s3", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
        assert s3.get_object(Bucket=BUCKET, Key="landing/x")["Body"].read() == b"ok"
        with pytest.raises(ClientError) as e:  # the identity policy still scopes it
            s3.put_object(Bucket=BUCKET, Key="landing/y", Body=b"")
        assert "user/tls-reader is not authorized to perform: s3:PutObject" in e.value.response["Error"]["Message"]
    finally:
        emu.stop()


def test_job_code_reaches_a_tls_emulator_as_its_role(tmp_path):
    """Under ``--tls`` the job's code gets the CA bundle with its role credentials, so its S3 reads
    pass the TLS-only policy (and are held to the role's grants)."""
    from sm_helpers import make_role, poll, read_tar, training_request, upload_training_inputs, with_platform

    emu = _TlsEmulator(tmp_path)
    try:
        s3 = emu.client("s3")
        _seed(s3)
        upload_training_inputs(s3, BUCKET)
        role = make_role(emu.client("iam"), "tls-job", with_platform({"Version": "2012-10-17", "Statement": [
            allow("s3:GetObject", f"arn:aws:s3:::{BUCKET}/landing/*"), allow("sts:GetCallerIdentity", "*")]}, BUCKET))
        sm = emu.client("sagemaker")
        sm.create_training_job(**training_request(
            "tls-train", BUCKET, {"epochs": 1, "read_s3": f"s3://{BUCKET}/landing/x"}, RoleArn=role))
        desc, _ = poll(lambda: sm.describe_training_job(TrainingJobName="tls-train"), "TrainingJobStatus")
        assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
        files = read_tar(s3.get_object(Bucket=BUCKET, Key="output/tls-train/output/model.tar.gz")["Body"].read())
        assert files["read.txt"] == b"ok"
    finally:
        emu.stop()
