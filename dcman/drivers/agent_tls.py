"""The site's side of TLS to the subcloud agents: verification, and sessions resumed per address.

Every probe opens a new connection (a site of 50,000 subclouds cannot keep one open to each:
a process may hold 20,000 files here), so a full handshake per probe would cost ~0.5 ms of
CPU, three times a plain probe. Instead each subcloud's TLS session is kept and resumed: the
abbreviated TLS 1.2 handshake costs ~0.1 ms (TLS 1.3's resumption repeats the key exchange and
costs four times that; figures in the README). pyOpenSSL, not the standard `ssl` module, because
the latter copies a session by re-parsing it, certificate included, on every get and set.

A certificate is accepted when its chain verifies against DCMAN_SUBCLOUD_CA_FILE (or the system
store) and it names the subcloud's address (an IP subjectAltName), as a StarlingX subcloud's
admin endpoint certificate does. There is no fallback to clear text.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from cryptography import x509
from OpenSSL import SSL, crypto

from dcman.tls import TlsSetupError, read_setting_file

# TLS 1.2 with forward-secret key exchange and AEAD ciphers only (see the module docstring for
# why not 1.3). The agent may offer 1.3 to other clients.
CIPHERS = b"ECDHE+AESGCM:ECDHE+CHACHA20"

# The most common X.509 verification errors, in words (OpenSSL's X509_V_ERR_* codes).
_VERIFY_ERRORS = {
    2: "the issuer certificate is not known",
    9: "the certificate is not yet valid",
    10: "the certificate has expired",
    18: "the certificate is self-signed and not trusted",
    19: "a self-signed certificate in the chain is not trusted",
    20: "the certificate is not issued by a trusted CA (DCMAN_SUBCLOUD_CA_FILE)",
    21: "the certificate's issuer could not be verified",
    24: "an intermediate certificate is not a CA",
    26: "the certificate may not be used for a TLS server",
}


@dataclass
class Peer:
    """What one connection expects of the agent's certificate, and why it was refused if it was."""

    address: str
    refusal: str | None = None


def names_address(certificate: x509.Certificate, address: str) -> bool:
    """Whether the certificate's IP subjectAltNames include `address`."""
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    try:
        wanted = ipaddress.ip_address(address)
    except ValueError:
        return False
    return wanted in names.get_values_for_type(x509.IPAddress)


@dataclass
class AgentTls:
    """One client context and the last TLS session of every agent address."""

    context: SSL.Context
    sessions: dict[str, SSL.Session] = field(default_factory=dict)
    full_handshakes: int = 0

    @classmethod
    def create(cls, ca_file: str | None) -> "AgentTls":
        context = SSL.Context(SSL.TLS_CLIENT_METHOD)
        context.set_min_proto_version(SSL.TLS1_2_VERSION)
        context.set_max_proto_version(SSL.TLS1_2_VERSION)
        context.set_cipher_list(CIPHERS)
        try:
            if ca_file:
                read_setting_file(ca_file, "DCMAN_SUBCLOUD_CA_FILE")
                context.load_verify_locations(ca_file)
            else:
                context.set_default_verify_paths()
        except SSL.Error:
            raise TlsSetupError(f"DCMAN_SUBCLOUD_CA_FILE: {ca_file} holds no PEM CA certificate") from None
        tls = cls(context)
        context.set_verify(SSL.VERIFY_PEER, tls._verify)
        return tls

    def _verify(self, connection: SSL.Connection, certificate: crypto.X509, error: int, depth: int,
                ok: int) -> bool:
        """OpenSSL's verdict on each certificate of the chain, plus the address check on the
        subcloud's own; called on full handshakes only (a resumed session was verified then)."""
        peer: Peer = connection.get_app_data()
        if not ok:
            peer.refusal = peer.refusal or _VERIFY_ERRORS.get(error, f"certificate verification error {error}")
            return False
        if depth == 0:
            self.full_handshakes += 1
            if not names_address(certificate.to_cryptography(), peer.address):
                peer.refusal = f"the certificate does not name {peer.address} (no such IP subjectAltName)"
                return False
        return True

    def connection(self, address: str) -> SSL.Connection:
        """A client connection to the agent at `address`, resuming its last session if any."""
        connection = SSL.Connection(self.context, None)
        connection.set_connect_state()
        connection.set_app_data(Peer(address))
        session = self.sessions.get(address)
        if session is not None:
            connection.set_session(session)
        return connection

    def done(self, address: str, connection: SSL.Connection) -> None:
        """Keep the session of a connection that completed its exchange, for the next one."""
        self.sessions[address] = connection.get_session()

    def forget(self, address: str) -> None:
        self.sessions.pop(address, None)

    def keep_only(self, addresses: set[str]) -> None:
        """Drop the sessions of addresses no longer probed (each holds ~6 KB)."""
        for address in [a for a in self.sessions if a not in addresses]:
            del self.sessions[address]
