"""Throw-away certificates for the TLS tests, made with openssl: a CA, and a certificate for
127.0.0.1 signed by it (EC P-256, valid two days)."""

import os
import subprocess

import harness


def openssl(*args, cwd):
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)}: {result.stderr}")


def make_ca(directory, name):
    """DIRECTORY/NAME.pem (and NAME.key): a self-signed CA."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN=swarm test {name}",
            cwd=directory)
    return os.path.join(directory, f"{name}.pem")


def make_server_cert(directory, ca):
    """DIRECTORY/server.pem and server.key: a server certificate for IP 127.0.0.1 signed by the CA
    DIRECTORY/CA.pem (made by make_ca)."""
    harness.write_file(os.path.join(directory, "server.ext"),
                       "subjectAltName = IP:127.0.0.1\nbasicConstraints = CA:FALSE\n"
                       "keyUsage = digitalSignature\nextendedKeyUsage = serverAuth\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "server.key",
            "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=directory)
    openssl("x509", "-req", "-in", "server.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "server.ext", cwd=directory)
    return os.path.join(directory, "server.pem"), os.path.join(directory, "server.key")
