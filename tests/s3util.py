"""An S3-compatible server for tests: moto in server mode on 127.0.0.1 (real S3 protocol over HTTP)."""

from __future__ import annotations

import itertools
import os
import uuid

# moto needs credentials to sign with; these are moto's own dummy ones, never real ones.
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                     "AWS_DEFAULT_REGION": "us-east-1"}
_counter = itertools.count()


class MotoS3:
    """A running ThreadedMotoServer on an ephemeral port and a helper to make fresh buckets."""

    def __init__(self):
        from moto.server import ThreadedMotoServer

        for k, v in DUMMY_CREDENTIALS.items():
            os.environ.setdefault(k, v)
        for k in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):
            os.environ.pop(k, None)
        import logging

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"

    def client(self):
        from workers.engine.s3store import make_client

        return make_client(self.endpoint)

    def new_bucket(self) -> str:
        """A fresh, empty bucket; returns its s3://bucket/prefix store URL."""
        name = f"t{next(_counter)}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return f"s3://{name}/releases"

    def stop(self) -> None:
        self.server.stop()
