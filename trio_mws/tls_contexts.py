"""The TLS contexts of the opening pipeline, prepared off the event loop.

* The default context (system trust, OpenSSL verification) is built once per process in a
  worker thread: loading the system store reads files and costs milliseconds.
* With ``ignorable_server_certificate_errors`` the handshake does not verify (a ``CERT_NONE``
  context derived from the user's settings) and :func:`certificates.chain_errors` validates
  the chain received on that same connection against :class:`TrustAnchors`.
* A client certificate is loaded with a password callback that refuses to prompt.

What the standard library cannot do, and how we degrade: an ``ssl.SSLContext`` cannot be
copied, and we never change the user's own ``control.ssl_context`` (a shared context would
then offer the client certificate on every connection, to every server). The contexts we
derive from it (for a client certificate, or without verification) carry what ``ssl`` can
read back: options, protocol versions, the TLS 1.2 cipher list, verify flags, host name
rules, post-handshake auth, the key log file, and the CAs that ``get_ca_certs()`` lists.
Not carried: CAs that OpenSSL loads lazily from a ``capath`` directory, ALPN protocols, the
ECDH curve, the security level of a cipher string, DH parameters. A user who needs those
loads the certificate into the context (``load_cert_chain``) and leaves
``client_certificate`` unset: the context is then used as it is.
"""

from __future__ import annotations

import os
import ssl
import threading
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import trio
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.verification import Store

from .control import ClientCertificate, MessageWebSocketControl

__all__ = ["TlsSetup", "TrustAnchors", "proxy_context", "tls_setup"]


@dataclass(frozen=True, slots=True)
class TrustAnchors:
    """The CA certificates our own validation trusts (``store`` is None when there are none)."""

    store: Store | None

    @classmethod
    def of(cls, certificates: Iterable[x509.Certificate]) -> TrustAnchors:
        """Anchors made of ``certificates`` (duplicates removed), an iterable that parses."""
        # Some roots predate RFC 5280 (a serial number that is not positive): cryptography
        # warns while parsing them, OpenSSL trusts them, and so do we.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            unique = {cert.public_bytes(Encoding.DER): cert for cert in certificates}
        return cls(Store(list(unique.values())) if unique else None)


@dataclass(frozen=True, slots=True)
class TlsSetup:
    """How to run one TLS handshake.

    ``anchors`` is None when ``context`` verifies (OpenSSL); otherwise the context does not
    verify and the received chain must be validated against ``anchors``.
    """

    context: ssl.SSLContext
    anchors: TrustAnchors | None


class _NoPassword(Exception):
    """Raised by the password callback: a key is encrypted and no password was given."""


def _refuse_prompt() -> str:
    # Without a callback OpenSSL would prompt on the terminal, blocking the event loop.
    raise _NoPassword


def load_client_certificate(context: ssl.SSLContext, certificate: ClientCertificate) -> None:
    """Load ``certificate`` into ``context`` (blocking: run it in a worker thread)."""
    password = certificate.password if certificate.password is not None else _refuse_prompt
    try:
        context.load_cert_chain(certificate.certfile, certificate.keyfile, password)
    except _NoPassword:
        raise ValueError(
            "cannot load client certificate: its private key is encrypted and "
            "ClientCertificate.password is not set"
        ) from None
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load client certificate: {exc}") from exc


class _ProcessCache:
    """What is built once per process; every builder runs in a worker thread under one lock,
    so that concurrent connects (even from several ``trio.run``) build it once."""

    def __init__(self) -> None:
        self.lock = threading.RLock()  # builders call each other
        self.default: ssl.SSLContext | None = None
        self.unverified_default: TlsSetup | None = None
        self.system_anchors: TrustAnchors | None = None
        self.client_contexts: dict[ClientCertificate, ssl.SSLContext] = {}

    def default_context(self) -> ssl.SSLContext:
        with self.lock:
            if self.default is None:
                self.default = ssl.create_default_context()
            return self.default

    def anchors(self) -> TrustAnchors:
        with self.lock:
            if self.system_anchors is None:
                self.system_anchors = TrustAnchors.of(_system_certificates())
            return self.system_anchors

    def unverified(self) -> TlsSetup:
        base = self.default_context()
        anchors = self.anchors()
        with self.lock:
            if self.unverified_default is None:
                self.unverified_default = TlsSetup(derive(base, verify=False), anchors)
            return self.unverified_default

    def with_client_certificate(self, certificate: ClientCertificate) -> ssl.SSLContext:
        with self.lock:
            context = self.client_contexts.get(certificate)
            if context is None:
                context = ssl.create_default_context()
                load_client_certificate(context, certificate)
                self.client_contexts[certificate] = context
            return context


_cache = _ProcessCache()


def _pem_certificates(path: str) -> list[x509.Certificate]:
    try:
        with open(path, "rb") as file:
            data = file.read()
        return x509.load_pem_x509_certificates(data)
    except (OSError, ValueError):  # unreadable, not PEM, or not a certificate: skip it
        return []


def _system_certificates() -> Iterator[x509.Certificate]:
    """The system's CA certificates: what the default context lists (its cafile, or the
    Windows store) and every file of the default capath (which OpenSSL reads lazily)."""
    # The default context lists its cafile, which OpenSSL reads at once.
    for der in _cache.default_context().get_ca_certs(binary_form=True):
        yield x509.load_der_x509_certificate(der)
    capath = ssl.get_default_verify_paths().capath
    if capath and os.path.isdir(capath):
        for entry in sorted(os.scandir(capath), key=lambda item: item.name):
            if entry.is_file():
                yield from _pem_certificates(entry.path)


def derive(base: ssl.SSLContext, *, verify: bool) -> ssl.SSLContext:
    """A new context with every setting of ``base`` that ``ssl`` can read back (see the module
    docstring for those it cannot); ``verify=False``: it does not verify the server."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        context.hostname_checks_common_name = base.hostname_checks_common_name
        context.verify_flags = base.verify_flags
        cadata = [ssl.DER_cert_to_PEM_cert(der) for der in base.get_ca_certs(binary_form=True)]
        if cadata:
            context.load_verify_locations(cadata="".join(cadata))
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.options = base.options
    context.minimum_version = base.minimum_version
    context.maximum_version = base.maximum_version
    context.post_handshake_auth = base.post_handshake_auth
    if base.keylog_filename:
        context.keylog_filename = base.keylog_filename
    # TLS 1.3 suites are not set through set_ciphers (Python cannot change them).
    ciphers = [item["name"] for item in base.get_ciphers() if item["protocol"] != "TLSv1.3"]
    if ciphers:
        context.set_ciphers(":".join(ciphers))
    return context


def _user_anchors(context: ssl.SSLContext) -> TrustAnchors:
    return TrustAnchors.of(
        x509.load_der_x509_certificate(der) for der in context.get_ca_certs(binary_form=True)
    )


def _prepare(control: MessageWebSocketControl, validate_ourselves: bool) -> TlsSetup:
    """The blocking part of :func:`tls_setup` (file I/O, key loading): a worker thread."""
    user = control.ssl_context
    certificate = control.client_certificate
    if not validate_ourselves:
        if certificate is None:
            return TlsSetup(user or _cache.default_context(), None)
        if user is None:
            return TlsSetup(_cache.with_client_certificate(certificate), None)
        context = derive(user, verify=True)
        load_client_certificate(context, certificate)
        return TlsSetup(context, None)
    if user is None and certificate is None:
        return _cache.unverified()
    context = derive(user or _cache.default_context(), verify=False)
    if certificate is not None:
        load_client_certificate(context, certificate)
    anchors = _cache.anchors() if user is None else _user_anchors(user)
    return TlsSetup(context, anchors)


def _require_verifying(context: ssl.SSLContext, name: str) -> None:
    # Checked when set, and again here: the context may have been changed since.
    if context.verify_mode != ssl.CERT_REQUIRED or not context.check_hostname:
        raise ValueError(
            f"control.{name} must verify certificates and host names; to tolerate specific "
            "server certificate errors use control.ignorable_server_certificate_errors"
        )


async def tls_setup(control: MessageWebSocketControl) -> TlsSetup:
    """The context for the server's TLS handshake, and the anchors when we validate ourselves
    (with ``ignorable_server_certificate_errors``). ``ValueError`` for an unusable client
    certificate or a user's context that does not verify."""
    if control.ssl_context is not None:
        _require_verifying(control.ssl_context, "ssl_context")
    validate_ourselves = bool(control.ignorable_server_certificate_errors)
    if control.client_certificate is None:
        # The common cases, once built, need no worker thread.
        if not validate_ourselves and control.ssl_context is not None:
            return TlsSetup(control.ssl_context, None)
        if not validate_ourselves and _cache.default is not None:
            return TlsSetup(_cache.default, None)
        if validate_ourselves and control.ssl_context is None and _cache.unverified_default:
            return _cache.unverified_default
    return await trio.to_thread.run_sync(_prepare, control, validate_ourselves)


async def proxy_context(control: MessageWebSocketControl) -> ssl.SSLContext:
    """The verifying context for TLS to an ``https://`` proxy."""
    if control.proxy_ssl_context is not None:
        _require_verifying(control.proxy_ssl_context, "proxy_ssl_context")
        return control.proxy_ssl_context
    if _cache.default is not None:
        return _cache.default
    return await trio.to_thread.run_sync(_cache.default_context)
