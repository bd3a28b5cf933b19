"""Throw-away TLS for local test doubles (``trustme``).

The google-genai SDK always connects to the Live API with ``wss://`` and an SSL context, so a
local double must speak TLS. :class:`TestCA` makes a private CA and a server certificate valid
for ``127.0.0.1``, ``::1`` and ``localhost``; clients trust it either through
:meth:`TestCA.client_ssl_context` (``HttpOptions(async_client_args={"ssl": ctx})``) or through
the CA PEM file :attr:`TestCA.ca_file` (``SSL_CERT_FILE`` set before ``genai.Client()`` is
built, or any "CA file" setting).

The PEM file lives in a private temporary directory and is removed by :meth:`TestCA.cleanup`
or at interpreter exit.
"""

from __future__ import annotations

import atexit
import os
import shutil
import ssl
import tempfile

import trustme

__all__ = ["DEFAULT_HOSTS", "TestCA", "make_server_and_client_ssl"]

DEFAULT_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")


class TestCA:
    """A private certificate authority plus one server certificate for local hosts."""

    __test__ = False  # not a pytest test class

    def __init__(self, hosts: tuple[str, ...] = DEFAULT_HOSTS) -> None:
        self.hosts = tuple(hosts)
        self.ca = trustme.CA(organization_name="Receptionist test CA")
        self.server_cert = self.ca.issue_cert(*self.hosts)
        self._dir = tempfile.mkdtemp(prefix="receptionist-ca-")
        self.ca_file = os.path.join(self._dir, "ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_file)
        atexit.register(self.cleanup)

    def server_ssl_context(self) -> ssl.SSLContext:
        """A server-side context presenting the certificate for :attr:`hosts`."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server_cert.configure_cert(ctx)
        return ctx

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client-side context (hostname checking on) that trusts only this CA."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        self.ca.configure_trust(ctx)
        return ctx

    def cleanup(self) -> None:
        """Remove the CA PEM file (idempotent)."""
        shutil.rmtree(self._dir, ignore_errors=True)


def make_server_and_client_ssl(
    hosts: tuple[str, ...] = DEFAULT_HOSTS,
) -> tuple[ssl.SSLContext, ssl.SSLContext, str]:
    """Return ``(server_ssl_context, client_ssl_context, ca_pem_path)`` from a fresh CA."""
    ca = TestCA(hosts)
    return ca.server_ssl_context(), ca.client_ssl_context(), ca.ca_file
