"""Independent cross-check of the emulator with Microsoft's own library.

Debian's python3-msal obtains client-credentials tokens from the emulator,
first with the client secret, then with the certificate (MSAL builds its own
client assertion). Prints one JSON object: {"secret": TOKEN, "cert": TOKEN}
or {"error": ...}.

usage: msal_check.py AUTHORITY CA_FILE CLIENT_ID SECRET_FILE CERT_PEM KEY_PEM SCOPE
"""
import hashlib
import json
import ssl
import sys

import msal


def main():
    authority, ca, client_id, secret_file, cert_pem, key_pem, scope = sys.argv[1:8]
    out = {"msal_version": msal.__version__}
    with open(secret_file) as f:
        secret = f.read().strip()
    app = msal.ConfidentialClientApplication(
        client_id, client_credential=secret, authority=authority,
        validate_authority=False, instance_discovery=False, verify=ca)
    r = app.acquire_token_for_client(scopes=[scope])
    if "access_token" not in r:
        out["error"] = {"secret": r}
        print(json.dumps(out))
        return 1
    out["secret"] = r["access_token"]

    with open(cert_pem) as f:
        cert_text = f.read()
    with open(key_pem) as f:
        key_text = f.read()
    thumb = hashlib.sha1(ssl.PEM_cert_to_DER_cert(cert_text)).hexdigest()
    app = msal.ConfidentialClientApplication(
        client_id, client_credential={"private_key": key_text, "thumbprint": thumb},
        authority=authority, validate_authority=False, instance_discovery=False, verify=ca)
    r = app.acquire_token_for_client(scopes=[scope])
    if "access_token" not in r:
        out["error"] = {"cert": r}
        print(json.dumps(out))
        return 1
    out["cert"] = r["access_token"]

    bad = msal.ConfidentialClientApplication(
        client_id, client_credential="not-the-secret", authority=authority,
        validate_authority=False, instance_discovery=False, verify=ca)
    r = bad.acquire_token_for_client(scopes=[scope])
    out["bad_secret_error"] = r.get("error")
    out["bad_secret_codes"] = r.get("error_codes")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
