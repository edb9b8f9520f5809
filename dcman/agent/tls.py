"""The agent's and the simulator's side of TLS: who they are, and the server context.

A real agent presents the one certificate it is given. The simulator stands for thousands of
subclouds, each of which must present a certificate naming its own address (that is what the
site checks), so it is given a CA instead and issues each simulated subcloud its certificate on
its first full handshake. Every connection shares one server context, so the session tickets a
site resumes stay valid whichever subcloud they were issued for.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections import OrderedDict

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from OpenSSL import SSL, crypto

from dcman.tls import TlsSetupError, read_setting_file

# How long a site may resume a session before it must do a full handshake again.
SESSION_SECONDS = 3600
# Certificates the simulator keeps issued; one is made again (~0.3 ms) when it fell out.
ISSUED_CACHE = 4096


def _read(path: str, option: str) -> bytes:
    return read_setting_file(path, option).encode("ascii", errors="replace")


def _server_context() -> SSL.Context:
    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    context.set_timeout(SESSION_SECONDS)
    return context


class ServerTls:
    """Makes the TLS connection of each accepted TCP connection, by the local address it came to."""

    def __init__(self, context: SSL.Context, issuer: Issuer | None = None) -> None:
        self.context = context
        self.issuer = issuer

    def connection(self, local_address: str) -> SSL.Connection:
        connection = SSL.Connection(self.context, None)
        if self.issuer is not None:
            connection.use_certificate(self.issuer.certificate_for(local_address))
            connection.use_privatekey(self.issuer.pkey)
        connection.set_accept_state()
        return connection


def agent_tls(cert_file: str, key_file: str) -> ServerTls:
    """A real agent's TLS: its certificate (and chain) and key, PEM; one line if they are unusable."""
    _read(cert_file, "--tls-cert")
    key_pem = _read(key_file, "--tls-key")
    context = _server_context()
    try:
        context.use_certificate_chain_file(cert_file)
    except SSL.Error:
        raise TlsSetupError(f"--tls-cert: {cert_file} holds no PEM certificate") from None
    try:
        context.use_privatekey(crypto.load_privatekey(crypto.FILETYPE_PEM, key_pem))
        context.check_privatekey()
    except (crypto.Error, SSL.Error):
        raise TlsSetupError(f"--tls-key: {key_file} is not the PEM private key of {cert_file}") from None
    return ServerTls(context)


class Issuer:
    """The simulator's CA: one certificate per simulated subcloud address, all with one key."""

    def __init__(self, ca_certificate: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey | object) -> None:
        self.ca_certificate, self.ca_key = ca_certificate, ca_key
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.pkey = crypto.PKey.from_cryptography_key(self.key)
        self._issued: OrderedDict[str, crypto.X509] = OrderedDict()
        self.issued_count = 0

    def certificate_for(self, address: str) -> crypto.X509:
        issued = self._issued.get(address)
        if issued is not None:
            self._issued.move_to_end(address)
            return issued
        issued = crypto.X509.from_cryptography(self._issue(address))
        self._issued[address] = issued
        self.issued_count += 1
        if len(self._issued) > ISSUED_CACHE:
            self._issued.popitem(last=False)
        return issued

    def _issue(self, address: str) -> x509.Certificate:
        now = datetime.datetime.now(datetime.timezone.utc)
        names: list[x509.GeneralName] = []
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(address)))
        except ValueError:
            pass
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, address or "subcloud")]))
                   .issuer_name(self.ca_certificate.subject).public_key(self.key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=365))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(self.ca_key, hashes.SHA256())  # type: ignore[arg-type]


def simulator_tls(ca_cert_file: str, ca_key_file: str) -> ServerTls:
    """The simulator's TLS from a CA certificate and key (PEM); one line if they are unusable."""
    cert_pem, key_pem = _read(ca_cert_file, "--tls-cert"), _read(ca_key_file, "--tls-key")
    try:
        ca_certificate = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        raise TlsSetupError(f"--tls-cert: {ca_cert_file} holds no PEM certificate") from None
    try:
        constraints = ca_certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
        is_ca = constraints.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise TlsSetupError(f"--tls-cert: {ca_cert_file} is not a CA certificate; the simulator issues each "
                             "simulated subcloud its own certificate from it")
    try:
        ca_key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise TlsSetupError(f"--tls-key: {ca_key_file} is not an unencrypted PEM private key") from None
    if ca_key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) \
            != ca_certificate.public_key().public_bytes(serialization.Encoding.DER,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo):
        raise TlsSetupError(f"--tls-key: {ca_key_file} is not the private key of {ca_cert_file}")
    return ServerTls(_server_context(), Issuer(ca_certificate, ca_key))
