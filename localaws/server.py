"""Run moto's server in this process with the localaws extensions installed.

``serve(host, port, home, enforce_iam, tls)`` binds ``host:port`` (only that address), installs
the extensions (IAM enforcement hooks, CloudWatch alarm evaluation, Rekognition labels from pixels, current SageMaker instance
types, atomic S3 conditional writes, ``localaws.sagemaker``), prints ``localaws listening on http(s)://HOST:PORT`` and serves until SIGTERM/SIGINT, then calls
``localaws.sagemaker.shutdown()`` when that exists.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from localaws import CA_BUNDLE_ENV, ENDPOINT_ENV, FAULTS_ENV, HOME_ENV, IAM_ENV, TLS_ENV
from localaws.faults import FaultRuleError, FaultStore
from localaws.iam import IamSwitch, env_flag
from localaws.middleware import LocalAwsMiddleware

READY_MESSAGE = "localaws listening on {url}"
# Services whose moto apps are built before the ready message, so first calls answer quickly.
WARM_SERVICES = (
    "s3",
    "dynamodb",
    "rekognition",
    "sagemaker",
    "sagemakerruntime",
    "sts",
    "logs",
    "iam",
    "cloudformation",
    "cloudwatch",
    "sns",  # ogiri_monitor's drift alerts (issue 14)
)


def install_extensions() -> None:
    """Patch moto with every localaws extension (idempotent; patches live on moto's classes,
    so they survive ``/moto-api/reset``)."""
    from localaws import cloudwatch, iam, instance_types, rekognition, s3_writes

    iam.install()
    cloudwatch.install()
    rekognition.install()
    instance_types.install()
    s3_writes.install()
    sagemaker = _sagemaker_module()
    if sagemaker is not None:
        sagemaker.install()


def _sagemaker_module() -> Any:
    try:
        import localaws.sagemaker as sagemaker
    except ImportError as e:  # only a missing package is tolerated, never a broken one
        if e.name != "localaws.sagemaker":
            raise
        return None
    return sagemaker


def _sagemaker_hook(name: str) -> Callable[[], Any] | None:
    sagemaker = sys.modules.get("localaws.sagemaker")
    hook = getattr(sagemaker, name, None)
    return hook if callable(hook) else None


def build_app(faults: FaultStore | None = None, iam: IamSwitch | None = None) -> LocalAwsMiddleware:
    """moto's dispatcher app wrapped in the localaws middleware (admin routes, IAM, faults)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    app = LocalAwsMiddleware(DomainDispatcherApplication(create_backend_app), faults, iam)
    app.reset_hooks.append(lambda: _call_hook("reset"))
    return app


def _call_hook(name: str) -> None:
    hook = _sagemaker_hook(name)
    if hook is not None:
        hook()


def _warm(app: LocalAwsMiddleware) -> None:
    dispatcher = app.app
    for service in WARM_SERVICES:
        if service not in dispatcher.app_instances:
            dispatcher.app_instances[service] = dispatcher.create_app(service)


def resolve_home(home: str | os.PathLike[str] | None) -> Path:
    """The work-dir root: ``home``, else ``$LOCALAWS_HOME``, else a new temp dir (created)."""
    chosen = home or os.environ.get(HOME_ENV)
    path = Path(chosen) if chosen else Path(tempfile.mkdtemp(prefix="localaws-"))
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


def _load_faults() -> FaultStore | None:
    faults = FaultStore()
    env_faults = os.environ.get(FAULTS_ENV)
    if env_faults:
        try:
            faults.load_json(env_faults)
        except FaultRuleError as e:
            print(f"localaws: bad {FAULTS_ENV}: {e}", file=sys.stderr, flush=True)
            return None
    return faults


def _tls_context(home: Path) -> Any:
    """Generate (once) the self-signed certificate and let this process and its children trust it."""
    from localaws.tls import ensure_certificate, server_context

    cert, key = ensure_certificate(home / "tls")
    os.environ[CA_BUNDLE_ENV] = str(cert)
    os.environ["AWS_CA_BUNDLE"] = str(cert)  # job and model-server processes inherit it
    return server_context(cert, key)


def serve(
    host: str = "127.0.0.1",
    port: int = 4566,
    home: str | os.PathLike[str] | None = None,
    enforce_iam: bool | None = None,
    tls: bool | None = None,
) -> int:
    """Serve until SIGTERM/SIGINT; returns the process exit status.

    ``enforce_iam``/``tls`` None: from ``$LOCALAWS_ENFORCE_IAM``/``$LOCALAWS_TLS`` (off when unset).
    """
    faults = _load_faults()
    if faults is None:
        return 2

    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    enforce_iam = env_flag(os.environ.get(IAM_ENV)) if enforce_iam is None else enforce_iam
    tls = env_flag(os.environ.get(TLS_ENV)) if tls is None else tls
    os.environ[HOME_ENV] = str(resolve_home(home))
    context = _tls_context(Path(os.environ[HOME_ENV])) if tls else None
    app = build_app(faults, IamSwitch(enforce_iam))
    try:
        server = make_server(
            host, port, app, threaded=True, request_handler=MotoRequestHandler, ssl_context=context
        )
    except (OSError, SystemExit) as e:  # werkzeug exits (after printing why) when the port is taken
        reason = e if isinstance(e, OSError) else "address in use or not available"
        print(f"localaws: cannot listen on {host}:{port}: {reason}", file=sys.stderr, flush=True)
        return 1
    url = _announce_url(host, server.server_address[1], tls)
    install_extensions()
    _warm(app)
    return _serve_until_signal(server, app, url)


def _announce_url(host: str, bound_port: int, tls: bool) -> str:
    """The emulator's URL, exported for job processes (``$LOCALAWS_ENDPOINT``, ``$MOTO_PORT``)."""
    url_host = f"[{host}]" if ":" in host else host
    url = f"{'https' if tls else 'http'}://{url_host}:{bound_port}"
    os.environ[ENDPOINT_ENV] = url
    os.environ["MOTO_PORT"] = str(bound_port)  # moto builds some URLs (presigned, queues) from it
    return url


def _serve_until_signal(server: Any, app: Any, url: str) -> int:
    """Announce readiness, serve on a thread until SIGTERM/SIGINT, then shut down the jobs."""
    stop = threading.Event()

    def _on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    # The socket already listens (connections wait in the backlog), so announce before serving;
    # one write per line keeps the line whole when stdout and stderr share a log file.
    iam_line = f"localaws IAM enforcement: {'on' if app.iam.enforce else 'off'}\n"
    sys.stdout.write(f"localaws home: {os.environ[HOME_ENV]}\n" + iam_line + READY_MESSAGE.format(url=url) + "\n")
    sys.stdout.flush()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    try:
        while not stop.wait(1.0):
            if not thread.is_alive():
                print("localaws: server thread died", file=sys.stderr, flush=True)
                return 1
    finally:
        server.shutdown()
        server.server_close()
        try:
            _call_hook("shutdown")
        except Exception as e:  # still report the stop; the hook's failure is in the log
            print(f"localaws: sagemaker shutdown hook failed: {e!r}", file=sys.stderr, flush=True)
        print("localaws stopped", flush=True)
    return 0
