"""Connecting to a Dask scheduler safely: TLS beyond the loopback, one clear line when it can't be reached.

Dask's protocol carries pickled code: whoever reaches a scheduler's port runs code on its workers. So a
plain ``tcp://`` scheduler is accepted only on the loopback (``127.0.0.1``, ``localhost``, ``::1``, e.g. the
end of an SSH tunnel); anything else must be ``tls://`` with a CA, a client certificate and its key. The
files come from Dask's own configuration (``distributed.comm.tls.*``: a YAML file, ``DASK_*`` variables)
or from ``riskon sweep --tls-ca/--tls-cert/--tls-key``, which set that configuration for the sweep.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from feeds.errors import NetworkError
from riskon.config import ConfigError

#: Seconds to wait for a scheduler before giving up with one line.
CONNECT_TIMEOUT = 10
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}
_TLS_KEYS = {
    "ca": "distributed.comm.tls.ca-file",
    "cert": "distributed.comm.tls.client.cert",
    "key": "distributed.comm.tls.client.key",
}


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_address(scheduler: str) -> str:
    """The scheme of a scheduler address (``tcp`` or ``tls``); a plain address beyond the loopback is refused."""
    parts = urlsplit(scheduler if "://" in scheduler else f"tcp://{scheduler}")
    if parts.scheme not in ("tcp", "tls") or not parts.hostname:
        raise ConfigError(f"--scheduler {scheduler!r}: give 'local', tcp://127.0.0.1:PORT or tls://HOST:PORT")
    if parts.scheme == "tcp" and not _is_loopback(parts.hostname):
        raise ConfigError(
            f"--scheduler {scheduler}: plain tcp:// beyond the loopback lets anyone who reaches the port run code "
            "on the workers; use tls:// with --tls-ca/--tls-cert/--tls-key, or an SSH tunnel to a scheduler "
            "bound to 127.0.0.1"
        )
    return parts.scheme


@contextlib.contextmanager
def tls_files(ca: Path | None, cert: Path | None, key: Path | None) -> Iterator[None]:
    """Use these TLS files (when given) for Dask connections made inside the block."""
    # Dask loads only for a Dask sweep
    import dask.config

    given = {name: path for name, path in (("ca", ca), ("cert", cert), ("key", key)) if path is not None}
    for name, path in given.items():
        if not Path(path).is_file():
            raise ConfigError(f"--tls-{name} {path}: no such file")
    with dask.config.set({_TLS_KEYS[name]: str(path) for name, path in given.items()}):
        yield


def connect_client(scheduler: str, timeout: float = CONNECT_TIMEOUT):
    """A ``distributed.Client`` on ``scheduler``: TLS-secured for ``tls://``; one line when it can't connect."""
    # Dask loads only for a Dask sweep
    import dask.config
    from dask.distributed import Client
    from distributed.security import Security

    scheme = check_address(scheduler)
    security = None
    if scheme == "tls":
        missing = [f"--tls-{name}" for name, key in _TLS_KEYS.items() if not dask.config.get(key, None)]
        if missing:
            raise ConfigError(f"--scheduler {scheduler}: a tls:// scheduler needs {', '.join(missing)}")
        security = Security(
            tls_ca_file=dask.config.get(_TLS_KEYS["ca"]),
            tls_client_cert=dask.config.get(_TLS_KEYS["cert"]),
            tls_client_key=dask.config.get(_TLS_KEYS["key"]),
            require_encryption=True,
        )
    try:
        return Client(scheduler, timeout=timeout, security=security)
    except (OSError, TimeoutError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise NetworkError(
            f"cannot reach the Dask scheduler at {scheduler} ({reason}); start it (dask scheduler) or check the "
            "address, and for tls:// that the certificates match; finished runs are kept"
        ) from None
