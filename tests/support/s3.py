"""moto's server, standing in for S3 (the usage exports' bucket): started from the installed
``moto[server]`` on a free 127.0.0.1 port, answering the real boto3 calls Sluice makes. Its
smallest multipart part is lowered (``S3_UPLOAD_PART_MIN_SIZE``) so a test can send a
multipart upload of a few kilobytes; everything else is moto's S3 as it is."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

from tests.support.services import LOOPBACK, Server, wait_for

ACCESS_KEY_ID = "sluice-test-access-key"
SECRET_ACCESS_KEY = "sluice-test-secret-key"
REGION = "us-east-1"
# The smallest part moto takes here (S3's is 5 MiB): what the multipart tests upload in.
MIN_PART_BYTES = 1024


class MotoS3Server(Server):
    name = "moto-s3"

    def start(self) -> None:
        self.process = self._spawn(
            [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(self.port)],
            cwd=self.workdir,
            env={
                "PATH": "/usr/bin:/bin",
                "HOME": str(self.workdir),
                "S3_UPLOAD_PART_MIN_SIZE": str(MIN_PART_BYTES),
            },
        )
        wait_for(self._answers, timeout=60, what="moto server", process=self.process)

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1)  # noqa: S310 - loopback
        except urllib.error.HTTPError:  # any answer: it is serving
            return True
        return True

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
        )
