"""The TLS options of the pixstor.mgmt modules against a real HTTPS endpoint: nginx with a
certificate from a CA made by the test, in front of a real `pixstor-mgmt serve`, with
REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE set to a bundle that does not hold that CA (requests
lets those variables override a session's `verify`; the modules must not)."""
import datetime
import ipaddress
import json
import shutil
import socket
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.harness import nginx_tls_proxy, require, wait_for
from tests.integration_ansible.test_ansible_playbooks import explain

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
# A real bundle that does not hold the test's CA: the system's, or else certifi's.
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt" if Path("/etc/ssl/certs/ca-certificates.crt").exists() \
    else requests.certs.where()


def make_ca_and_server_cert(folder):
    """(CA certificate file, server certificate chain file, server key file)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pixstor-mgmt test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_file, cert_file, key_file = folder / "test-ca.pem", folder / "server.pem", folder / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    return ca_file, cert_file, key_file


@pytest.fixture(scope="module")
def https_front(pixstor_server, tmp_path_factory):
    """(https url, CA file): nginx terminating TLS in front of the test server."""
    require(NGINX, "nginx is not installed (make test installs it with apt as root)")
    folder = tmp_path_factory.mktemp("tls")
    ca_file, cert_file, key_file = make_ca_and_server_cert(folder)
    process, port = nginx_tls_proxy(NGINX, folder, [pixstor_server.url.split("://", 1)[1]], cert_file, key_file)
    url = f"https://localhost:{port}"

    def up():
        assert process.poll() is None, (folder / "nginx-error.log").read_text()
        try:
            return requests.get(url + "/", verify=str(ca_file), timeout=2).status_code == 401
        except requests.ConnectionError:
            return False
    try:
        wait_for(up, timeout=20, what="nginx with TLS on " + url)
        yield url, ca_file
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.fixture
def silent_server():
    """An http url whose server accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield "http://127.0.0.1:%d" % listener.getsockname()[1]
    listener.close()


def test_tls_options_win_over_the_ca_bundle_variables(playbook, https_front, silent_server, tmp_path):
    url, ca_file = https_front
    results_file = tmp_path / "tls-results.json"
    run = playbook("tls.yml", environment={"REQUESTS_CA_BUNDLE": SYSTEM_BUNDLE, "CURL_CA_BUNDLE": SYSTEM_BUNDLE},
                   pixstor_https_url=url, test_ca=str(ca_file), silent_url=silent_server,
                   results_file=str(results_file))
    assert run.proc.returncode == 0, explain(run)
    results = json.loads(results_file.read_text())

    def profiles(name):
        result = results[name]
        assert not result.get("failed"), (name, result.get("msg"))
        return sorted(p["name"] for p in result["profiles"])

    expected = ["mmfs1-sas1", "mmfs1-sata1"]
    # options and their PIXSTOR_* fallbacks win over REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE
    assert profiles("with_ca_path") == expected
    assert profiles("without_validation") == expected
    assert profiles("ca_path_from_environment") == expected
    assert profiles("validation_off_from_environment") == expected
    # without an option the environment's bundle is the trust: it lacks the test CA, so it fails...
    refused = results["environment_bundle"]
    assert refused["failed"] and "CERTIFICATE_VERIFY_FAILED" in refused["msg"], refused
    # ... and holding the test CA, it works
    assert profiles("requests_bundle_is_the_ca") == expected
    assert results["missing_ca_path"]["msg"] == (
        "ca_path %s.missing: no such file; give the PEM file of the CA that signed the server's certificate" % ca_file)
    slow = results["timeout_from_environment"]
    assert slow["failed"] and "read timeout=1)" in slow["msg"], slow
