"""The Celery stack's start-up checks: a missing broker or database is a clear error at once, never a
hang, and names the command that starts it; throwaway databases are created and dropped."""

from __future__ import annotations

import socket
import threading

import pytest

from ogiri_local.celery_stack import CeleryStack, ServiceUnreachable, ThrowawayDatabases, check_broker
from ogiri_local.emulator import free_port


def test_a_closed_redis_port_is_a_clear_error_naming_the_start_command():
    port = free_port()
    with pytest.raises(ServiceUnreachable) as err:
        check_broker(f"redis://127.0.0.1:{port}/0", timeout=2)
    assert f"redis-server --bind 127.0.0.1 --port {port}" in str(err.value)
    assert "not reachable" in str(err.value)


def test_a_closed_rabbitmq_port_names_rabbitmq():
    with pytest.raises(ServiceUnreachable, match="rabbitmq-server"):
        check_broker(f"amqp://guest:guest@127.0.0.1:{free_port()}//", timeout=2)


def test_something_else_on_the_broker_port_is_refused_not_waited_on():
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer():
        conn, _ = server.accept()
        with conn:
            conn.recv(64)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        with pytest.raises(ServiceUnreachable, match="unexpected answer"):
            check_broker(f"redis://127.0.0.1:{port}/0", timeout=2)
    finally:
        thread.join(5)
        server.close()


def _reachable(url: str) -> bool:
    try:
        check_broker(url, timeout=2)
    except ServiceUnreachable:
        return False
    return True


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "amqp://guest:guest@127.0.0.1:5672//"])
def test_the_local_brokers_pass(url):
    if not _reachable(url):
        pytest.skip(f"{url} not running here")
    check_broker(url)


def test_the_stack_refuses_to_start_without_a_broker(tmp_path):
    databases = ThrowawayDatabases("metadata", "results")  # not created: start() fails before using them
    stack = CeleryStack(tmp_path / "airflow", databases, broker_url=f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(ServiceUnreachable, match="redis-server"):
        stack.start()
    assert stack.procs == {}, "nothing may be started when the broker is missing"
    stack.stop()


def test_unreachable_postgres_is_a_clear_error():
    dbs = ThrowawayDatabases("ledger", admin_url=f"postgresql://postgres@127.0.0.1:{free_port()}/postgres")
    with pytest.raises(ServiceUnreachable, match="sudo service postgresql start"):
        dbs.__enter__()


def test_throwaway_databases_are_created_and_dropped():
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        with ThrowawayDatabases("metadata", "ledger") as dbs:
            with psycopg2.connect(dbs["ledger"]) as conn, conn.cursor() as cur:
                cur.execute("SELECT current_database()")
                assert cur.fetchone() == (dbs.names["ledger"],)
            conn.close()
            names = set(dbs.names.values())
            assert dbs.connection_uri("ledger").startswith("postgres://")
            assert dbs.sqlalchemy("metadata").startswith("postgresql+psycopg2://")
    except ServiceUnreachable as exc:
        pytest.skip(str(exc))
    with psycopg2.connect(dbs.admin_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT datname FROM pg_database")
        assert names.isdisjoint(row[0] for row in cur.fetchall())
    conn.close()


def test_make_up_celery_exits_with_the_message_before_starting_anything(monkeypatch):
    from ogiri_local import up

    monkeypatch.setenv("OGIRI_CELERY_BROKER_URL", f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(SystemExit, match=r"(?s)make up EXECUTOR=celery: the Celery broker .*redis-server"):
        up.main(["--executor", "celery"])
