"""Command line: ``python -m localaws serve --host 127.0.0.1 --port N [--home DIR] [--enforce-iam] [--tls]``;
``python -m localaws sns-published [--url URL] [--topic-arn ARN]`` prints what a running emulator's SNS
topics received (``GET /_localaws/sns/published``)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run it; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m localaws", description="Local AWS emulator (moto + extensions)."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the emulator until SIGTERM/SIGINT")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; only this one)"
    )
    serve.add_argument("--port", type=int, default=4566, help="TCP port (default 4566; 0 picks a free one)")
    serve.add_argument(
        "--home", default=None, help="work-dir root (default $LOCALAWS_HOME or a new temp dir)"
    )
    serve.add_argument(
        "--enforce-iam",
        action="store_true",
        default=None,
        help="authorize every request against IAM (default: $LOCALAWS_ENFORCE_IAM, else off)",
    )
    serve.add_argument(
        "--tls",
        action="store_true",
        default=None,
        help="serve HTTPS with a self-signed certificate under HOME/tls (default: $LOCALAWS_TLS, else off)",
    )
    published = sub.add_parser("sns-published", help="print the messages published to SNS topics (JSON)")
    published.add_argument("--url", default="http://127.0.0.1:4566", help="the emulator (default %(default)s)")
    published.add_argument("--topic-arn", default=None, help="only this topic")
    args = parser.parse_args(argv)
    if args.command == "sns-published":
        return _print_published(args.url, args.topic_arn)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be in 0-65535, got {args.port}")

    from localaws.server import serve as run_server

    return run_server(args.host, args.port, args.home, enforce_iam=args.enforce_iam, tls=args.tls)


def _print_published(url: str, topic_arn: str | None) -> int:
    import json
    import urllib.request
    from urllib.parse import urlencode

    query = f"?{urlencode({'topic_arn': topic_arn})}" if topic_arn else ""
    with urllib.request.urlopen(f"{url.rstrip('/')}/_localaws/sns/published{query}", timeout=10) as resp:
        print(json.dumps(json.load(resp), indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
