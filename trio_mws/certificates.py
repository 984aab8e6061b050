"""Server certificate classification and custom validation (the TLS stage's policy)."""

from __future__ import annotations

import datetime
import inspect
import ipaddress
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    Subject,
    VerificationError,
)

from .enums import ChainValidationResult, SocketSslErrorSeverity, WebErrorStatus

__all__ = [
    "ServerCustomValidationRequest",
    "chain_errors",
    "chain_result_for_verify_code",
    "status_for_chain_results",
    "status_for_verify_code",
]

# OpenSSL X509_V_ERR_* codes, as carried by ssl.SSLCertVerificationError.verify_code.
_VERIFY_CODE_RESULTS = {
    2: ChainValidationResult.INCOMPLETE_CHAIN,  # unable to get issuer certificate
    3: ChainValidationResult.REVOCATION_INFORMATION_MISSING,  # unable to get CRL
    7: ChainValidationResult.INVALID_SIGNATURE,
    9: ChainValidationResult.EXPIRED,  # not yet valid
    10: ChainValidationResult.EXPIRED,
    18: ChainValidationResult.UNTRUSTED,  # self-signed leaf
    19: ChainValidationResult.UNTRUSTED,  # self-signed certificate in chain
    20: ChainValidationResult.UNTRUSTED,  # unable to get local issuer certificate
    21: ChainValidationResult.INCOMPLETE_CHAIN,  # unable to verify the first certificate
    23: ChainValidationResult.REVOKED,
    24: ChainValidationResult.BASIC_CONSTRAINTS_ERROR,  # invalid CA
    25: ChainValidationResult.BASIC_CONSTRAINTS_ERROR,  # path length exceeded
    26: ChainValidationResult.WRONG_USAGE,
    27: ChainValidationResult.UNTRUSTED,  # certificate not trusted
    34: ChainValidationResult.UNKNOWN_CRITICAL_EXTENSION,
    62: ChainValidationResult.INVALID_NAME,  # host name mismatch
    64: ChainValidationResult.INVALID_NAME,  # IP address mismatch
}

_RESULT_STATUS = {
    ChainValidationResult.INVALID_NAME: WebErrorStatus.CERTIFICATE_COMMON_NAME_IS_INCORRECT,
    ChainValidationResult.EXPIRED: WebErrorStatus.CERTIFICATE_EXPIRED,
    ChainValidationResult.REVOKED: WebErrorStatus.CERTIFICATE_REVOKED,
    ChainValidationResult.UNTRUSTED: WebErrorStatus.CERTIFICATE_IS_INVALID,
    ChainValidationResult.INCOMPLETE_CHAIN: WebErrorStatus.CERTIFICATE_IS_INVALID,
}


def chain_result_for_verify_code(code: int) -> ChainValidationResult:
    """The :class:`ChainValidationResult` for an OpenSSL verification error code."""
    return _VERIFY_CODE_RESULTS.get(code, ChainValidationResult.OTHER_ERRORS)


def status_for_chain_results(results: Sequence[ChainValidationResult]) -> WebErrorStatus:
    """The status of a connect that failed with these validation results (first one wins)."""
    for result in results:
        if result is not ChainValidationResult.SUCCESS:
            return _RESULT_STATUS.get(result, WebErrorStatus.CERTIFICATE_CONTAINS_ERRORS)
    return WebErrorStatus.CERTIFICATE_CONTAINS_ERRORS


def status_for_verify_code(code: int) -> WebErrorStatus:
    """The status for an ``ssl.SSLCertVerificationError`` with this ``verify_code``."""
    return status_for_chain_results([chain_result_for_verify_code(code)])


def chain_errors(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    store: Store | None,
    host: str,
) -> list[ChainValidationResult]:
    """Every error of the chain a server sent, as Windows lists them (empty: valid).

    Trust (an RFC 5280 path from ``leaf`` through ``intermediates`` to an anchor of
    ``store``, by cryptography's X.509 verifier), validity period and host name are checked
    separately, so that one error never hides another.
    """
    now = datetime.datetime.now(datetime.UTC)
    errors: list[ChainValidationResult] = []
    trust = _path_error(leaf, intermediates, store, now)
    if trust is not None:
        errors.append(trust)
    if ChainValidationResult.EXPIRED not in errors and any(
        not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc
        for cert in (leaf, *intermediates)
    ):
        errors.append(ChainValidationResult.EXPIRED)
    if ChainValidationResult.INVALID_NAME not in errors and not matches_host(leaf, host):
        errors.append(ChainValidationResult.INVALID_NAME)
    return errors


def _wrong_usage(_policy: object, _cert: x509.Certificate, usage: object) -> None:
    # The leaf must be usable for a TLS server when it restricts its usage (as OpenSSL does).
    if isinstance(usage, x509.ExtendedKeyUsage) and not (
        ExtendedKeyUsageOID.SERVER_AUTH in usage
        or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in usage
    ):
        raise ValueError("wrong usage: the certificate is not for TLS servers")


# Leaf extensions as OpenSSL and Windows accept them (the Web PKI profile would refuse, for
# example, a critical subjectAltName); CA certificates follow the Web PKI profile.
_LEAF_POLICY = (
    ExtensionPolicy.permit_all()
    .require_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
    .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _wrong_usage)
)

# Keywords of cryptography's verification messages, most specific first.
_MESSAGE_RESULTS = (
    ("wrong usage", ChainValidationResult.WRONG_USAGE),
    ("subjectaltname", ChainValidationResult.INVALID_NAME),
    ("signature", ChainValidationResult.INVALID_SIGNATURE),
    ("basicconstraints", ChainValidationResult.BASIC_CONSTRAINTS_ERROR),
    ("path length", ChainValidationResult.BASIC_CONSTRAINTS_ERROR),
    ("not valid at validation time", ChainValidationResult.EXPIRED),
    ("critical", ChainValidationResult.UNKNOWN_CRITICAL_EXTENSION),
    ("candidates exhausted", ChainValidationResult.UNTRUSTED),
)


def _path_error(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    store: Store | None,
    now: datetime.datetime,
) -> ChainValidationResult | None:
    if store is None:
        return ChainValidationResult.UNTRUSTED
    subject = _subject_of(leaf)
    if subject is None:  # no usable subjectAltName: no path validation without a name
        return ChainValidationResult.INVALID_NAME
    # Self-issued certificates sent by the server are roots: trusted only from the store.
    chain = [cert for cert in intermediates if cert.issuer != cert.subject]
    # Validity is reported on its own (EXPIRED): validate the path at a moment when the
    # certificates were valid, so that an expired certificate is not also called untrusted.
    start = max(cert.not_valid_before_utc for cert in (leaf, *chain))
    end = min(cert.not_valid_after_utc for cert in (leaf, *chain))
    moment = min(max(now, start), end) if start <= end else now
    verifier = (
        PolicyBuilder()
        .store(store)
        .time(moment)
        .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=_LEAF_POLICY)
        .build_server_verifier(subject)
    )
    try:
        verifier.verify(leaf, chain)
    except VerificationError as exc:
        message = str(exc).lower()
        for keyword, result in _MESSAGE_RESULTS:
            if keyword in message:
                return result
        return ChainValidationResult.OTHER_ERRORS
    return None


def _subject_of(leaf: x509.Certificate) -> Subject | None:
    """A name the leaf carries, for the path check (the host name is checked separately)."""
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    for address in san.get_values_for_type(x509.IPAddress):
        if isinstance(address, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            return x509.IPAddress(address)
    for name in san.get_values_for_type(x509.DNSName):
        # A wildcard is matched by any name of its level.
        concrete = "wildcard" + name[1:] if name.startswith("*.") else name
        try:
            return x509.DNSName(concrete)
        except ValueError:
            continue
    return None


def matches_host(certificate: x509.Certificate, host: str) -> bool:
    """RFC 6125 matching of ``host`` against the certificate's names (one-label wildcards)."""
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    try:
        san: x509.SubjectAlternativeName | None = certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value
    except x509.ExtensionNotFound:
        san = None
    if address is not None:
        return san is not None and address in san.get_values_for_type(x509.IPAddress)
    names: list[str] = list(san.get_values_for_type(x509.DNSName)) if san is not None else []
    if not names:
        names = [
            str(attr.value)
            for attr in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        ]
    wanted = host.lower().rstrip(".").split(".")
    for name in names:
        labels = name.lower().rstrip(".").split(".")
        if len(labels) != len(wanted):
            continue
        first_ok = labels[0] == wanted[0] or (labels[0] == "*" and len(labels) > 2)
        if first_ok and labels[1:] == wanted[1:]:
            return True
    return False


def severity_for(
    errors: Sequence[ChainValidationResult], ignorable: Sequence[ChainValidationResult]
) -> SocketSslErrorSeverity:
    """NONE without errors, IGNORABLE when all are ignorable, FATAL otherwise."""
    if not errors:
        return SocketSslErrorSeverity.NONE
    if all(error in ignorable for error in errors):
        return SocketSslErrorSeverity.IGNORABLE
    return SocketSslErrorSeverity.FATAL


@dataclass(slots=True)
class ServerCustomValidationRequest:
    """What ``ws.server_custom_validation_requested`` receives: call :meth:`reject` to refuse."""

    #: The server's leaf certificate (``cryptography.x509.Certificate``).
    server_certificate: x509.Certificate
    #: The other certificates of the chain the server sent, in its order.
    server_intermediate_certificates: tuple[x509.Certificate, ...] = ()
    #: Every :class:`ChainValidationResult` the default validation found (empty: valid).
    server_certificate_errors: tuple[ChainValidationResult, ...] = ()
    #: ``NONE``, ``IGNORABLE`` (every error tolerated by the control) or ``FATAL``.
    server_certificate_error_severity: SocketSslErrorSeverity = SocketSslErrorSeverity.NONE
    _rejected: bool = field(default=False, repr=False)

    def reject(self) -> None:
        """Refuse the server: ``connect`` raises :class:`CertificateRejected`."""
        self._rejected = True

    @property
    def rejected(self) -> bool:
        """Whether :meth:`reject` was called."""
        return self._rejected


#: A custom validation callback: sync or async, receiving the request.
CustomValidator = Callable[[ServerCustomValidationRequest], "Awaitable[None] | None"]


async def run_custom_validation(
    validator: CustomValidator, request: ServerCustomValidationRequest
) -> bool:
    """Run the user's validator; True when it accepted (returned without ``reject()``)."""
    result = validator(request)
    if inspect.isawaitable(result):
        await result
    return not request.rejected
