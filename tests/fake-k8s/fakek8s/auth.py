"""Authentication (bearer tokens, client certificates) and a two-role authorizer."""

import os
import secrets
import threading
from dataclasses import dataclass, field

READ_VERBS = ("get", "list", "watch")


@dataclass
class User:
    name: str
    groups: list = field(default_factory=list)
    read_only: bool = False


class Auth:
    """Tokens the fake accepts, and who they are.

    The token-file token can be rotated: a new one is written to the tokenFile and the
    old one stops working, which is what a projected service account token does to a
    client that never re-reads its file.
    """

    def __init__(self, token_file):
        self.lock = threading.Lock()
        self.tokens = {}
        self.token_file = token_file
        self.token_file_token = None

    @staticmethod
    def new_token():
        return secrets.token_urlsafe(32)

    def add(self, token, user):
        with self.lock:
            self.tokens[token] = user

    def revoke(self, token):
        with self.lock:
            return self.tokens.pop(token, None) is not None

    def set_token_file_token(self, token, user):
        """Accept `token` (and no longer the previous file token); write it to the tokenFile atomically."""
        with self.lock:
            if self.token_file_token:
                self.tokens.pop(self.token_file_token, None)
            self.token_file_token = token
            self.tokens[token] = user
        tmp = self.token_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(token)
        os.replace(tmp, self.token_file)

    def rotate_token_file(self):
        user = self.tokens.get(self.token_file_token) or User("token-file-user", ["system:masters"])
        token = self.new_token()
        self.set_token_file_token(token, user)
        return token

    def authenticate(self, authorization, peer_cert):
        """The user, or None (401). Client certificates are tried first, as the apiserver does."""
        subject = dict(pair[0] for pair in (peer_cert or {}).get("subject", ()))
        if subject.get("commonName"):
            groups = [value for rdn in peer_cert["subject"] for key, value in rdn if key == "organizationName"]
            return User(subject["commonName"], groups)
        if authorization and authorization[:7].lower() == "bearer ":
            with self.lock:
                return self.tokens.get(authorization[7:].strip())
        return None


def allowed(user, verb):
    if "system:masters" in user.groups:
        return True
    return verb in READ_VERBS if user.read_only else True
