#!/usr/bin/env python3
"""Validate a Heratio API key from Python through libheratio_keys (ctypes).

    printf '%s' "$KEY" | HERATIO_KEYS_DSN=sqlite:/var/lib/heratio/keys.db \
        python3 validate_ctypes.py read write

Reads the key from standard input (keys on command lines leak into shell
history), requires the scopes given as arguments, prints
`STATUS HTTP ...` and exits 0 when valid, 1 otherwise, 2 if the store
cannot be opened. HERATIO_KEYS_LIB names the library file (default: the
system's libheratio_keys, found like the C linker would).

In a long-running service (the AI gateway), open one validator at start-up
and share it between threads: hk_validate releases the GIL (ctypes does for
every foreign call), is thread-safe, and costs well under a microsecond on a
cache hit.
"""

import ctypes
import ctypes.util
import os
import sys

HK_KIND_API_KEY = 1
HK_KIND_AI_TOKEN = 2
HK_STATUS_VALID = 0
HK_NAME_MAX = 1024
HK_SCOPES_MAX = 4160


class HkCredential(ctypes.Structure):
    """struct hk_credential from heratio_keys.h (field order matters)."""

    _fields_ = [
        ("client_id", ctypes.c_int64),
        ("key_id", ctypes.c_int64),
        ("expires_at", ctypes.c_int64),  # ms since the epoch, -1 = never
        ("kind", ctypes.c_uint32),
        ("scope_count", ctypes.c_uint32),
        ("name_truncated", ctypes.c_bool),
        ("scopes_truncated", ctypes.c_bool),
        ("name", ctypes.c_char * HK_NAME_MAX),
        ("scopes", ctypes.c_char * HK_SCOPES_MAX),  # "read,write" or "*"
    ]


def load(path=None):
    """Loads the library and declares the prototypes used here."""
    path = path or os.environ.get("HERATIO_KEYS_LIB") or ctypes.util.find_library("heratio_keys")
    if not path:
        raise OSError("libheratio_keys not found; set HERATIO_KEYS_LIB")
    lib = ctypes.CDLL(path)
    lib.hk_validator_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.hk_validator_open.restype = ctypes.c_int
    lib.hk_validate.argtypes = [
        ctypes.c_void_p,  # hk_validator *
        ctypes.c_uint32,  # hk_kind
        ctypes.c_char_p,  # key (exactly key_len bytes are read)
        ctypes.c_size_t,  # key_len
        ctypes.POINTER(ctypes.c_char_p),  # required scopes
        ctypes.c_size_t,  # scopes_len
        ctypes.c_char_p,  # client IP (usage log), may be None
        ctypes.c_char_p,  # endpoint (usage log), may be None
        ctypes.POINTER(HkCredential),  # out, written only when valid
    ]
    lib.hk_validate.restype = ctypes.c_uint32
    lib.hk_validator_free.argtypes = [ctypes.c_void_p]
    lib.hk_validator_free.restype = None
    lib.hk_status_name.argtypes = [ctypes.c_uint32]
    lib.hk_status_name.restype = ctypes.c_char_p
    lib.hk_status_http.argtypes = [ctypes.c_uint32]
    lib.hk_status_http.restype = ctypes.c_uint16
    lib.hk_last_error_message.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    lib.hk_last_error_message.restype = ctypes.c_size_t
    return lib


def last_error(lib):
    buf = ctypes.create_string_buffer(1024)
    lib.hk_last_error_message(buf, len(buf))
    return buf.value.decode("utf-8", "replace")


class Validator:
    """One per process; thread-safe. Use as a context manager or call close()."""

    def __init__(self, dsn, lib=None):
        self.lib = lib or load()
        self.handle = ctypes.c_void_p()
        rc = self.lib.hk_validator_open(dsn.encode(), ctypes.byref(self.handle))
        if rc != 0:
            raise OSError(f"hk_validator_open: {rc}: {last_error(self.lib)}")

    def validate(self, key, scopes=(), kind=HK_KIND_API_KEY, ip=None, endpoint=None):
        """Returns (status name, HTTP status, HkCredential or None, message)."""
        raw = key.encode() if isinstance(key, str) else bytes(key)
        required = (ctypes.c_char_p * len(scopes))(*(s.encode() for s in scopes))
        cred = HkCredential()
        status = self.lib.hk_validate(
            self.handle, kind, raw, len(raw), required, len(scopes),
            ip.encode() if ip else None, endpoint.encode() if endpoint else None,
            ctypes.byref(cred),
        )
        name = self.lib.hk_status_name(status).decode()
        http = self.lib.hk_status_http(status)
        if status == HK_STATUS_VALID:
            return name, http, cred, ""
        return name, http, None, last_error(self.lib)

    def close(self):
        if self.handle:
            self.lib.hk_validator_free(self.handle)  # flushes the usage log
            self.handle = ctypes.c_void_p()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def main():
    dsn = os.environ.get("HERATIO_KEYS_DSN", "sqlite:heratio_keys.db")
    key = sys.stdin.buffer.read().strip()
    try:
        validator = Validator(dsn)
    except OSError as e:
        print(e, file=sys.stderr)
        return 2
    with validator:
        status, http, cred, message = validator.validate(key, sys.argv[1:])
    if cred is None:
        print(f"{status} {http} {message}")
        return 1
    print(
        f"{status} {http} client={cred.client_id} key={cred.key_id} "
        f"name={cred.name.decode()} scopes={cred.scopes.decode()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
