"""Yahoo and Binance at the wire, for tests: the real yfinance and ccxt run, only the HTTP call is replaced.

``install(kind)`` patches ``curl_cffi.requests.Session.request`` (what yfinance sends every request
through) and ``requests.Session.request`` (what ccxt uses):

- ``offline``: every request raises what curl_cffi raises with no network — ``DNSError`` with curl's
  own text (read on this machine, which has no network) — and ccxt's requests raise
  ``requests.exceptions.ConnectionError`` as urllib3 does when a name does not resolve;
- ``unknown``: Yahoo answers as it does for a symbol it does not know (the chart API: 404 "No data
  found, symbol may be delisted"; the quote summary: 404 "Quote not found for symbol"; empty quote
  and time-series lists);
- ``rate_limited``: Yahoo answers every data request with 429 Too Many Requests.

yfinance keeps cookies and time zones in a cache folder: ``install`` points it at ``cache_dir`` so a
test neither reads nor writes the user's. A ``sitecustomize.py`` can call ``install`` to patch a
``riskon`` subprocess (``SITE``), whose forked fetch child inherits the patch.
"""

from __future__ import annotations

import json
import textwrap

OFFLINE_CURL = (
    "Failed to perform, curl: (6) Could not resolve host: {host}. "
    "See https://curl.se/libcurl/c/libcurl-errors.html first for more details."
)

#: A sitecustomize.py that patches a subprocess: format with tests (the tests folder), kind and cache_dir.
SITE = textwrap.dedent(
    """
    # Test-only: Yahoo and the exchanges at the wire, see tests/support/fake_yahoo.py.
    import sys

    sys.path.insert(0, {tests!r})
    from support.fake_yahoo import install

    install({kind!r}, {cache_dir!r})
    """
)


def _host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]


def _response(url: str, status: int, body: str):
    from curl_cffi import requests as curl

    r = curl.Response()
    r.url, r.status_code, r.ok = url, status, status < 400
    r.reason = {200: "OK", 404: "Not Found", 429: "Too Many Requests"}[status]
    r.content = body.encode()
    return r


def yahoo_unknown(url: str) -> tuple[int, str]:
    """Yahoo's answer to ``url`` when the symbol in it is unknown (status, body)."""
    sym = url.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
    if "/v8/finance/chart/" in url:
        error = {"code": "Not Found", "description": "No data found, symbol may be delisted"}
        return 404, json.dumps({"chart": {"result": None, "error": error}})
    if "/quoteSummary/" in url:
        error = {"code": "Not Found", "description": f"Quote not found for symbol: {sym}"}
        return 404, json.dumps({"quoteSummary": {"result": None, "error": error}})
    if "/v7/finance/quote" in url:
        return 200, json.dumps({"quoteResponse": {"result": [], "error": None}})
    if "/timeseries/" in url:
        return 200, json.dumps({"timeseries": {"result": [], "error": None}})
    if "getcrumb" in url:
        return 200, "Pc0Ukl.Xy1"
    return 200, "<html></html>"  # fc.yahoo.com, the consent page


def yahoo_rate_limited(url: str) -> tuple[int, str]:
    """Yahoo's answer when it rate-limits this machine: 429 for every data request."""
    if "finance.yahoo.com" in url and "getcrumb" not in url:
        return 429, "Too Many Requests"
    return yahoo_unknown(url)


def wire(kind: str) -> tuple[list[tuple[object, str, object]], list[str]]:
    """The patches for ``kind`` as ``(class, attribute, function)`` triples, and the list every URL asked goes to."""
    import requests
    from curl_cffi import requests as curl

    calls: list[str] = []

    def curl_request(self, method, url, *args, **kwargs):
        calls.append(url)
        if kind == "offline":
            raise curl.exceptions.DNSError(OFFLINE_CURL.format(host=_host(url)), 6)
        return _response(url, *(yahoo_unknown if kind == "unknown" else yahoo_rate_limited)(url))

    def requests_request(self, method, url, *args, **kwargs):
        calls.append(url)
        raise requests.exceptions.ConnectionError(
            f"HTTPSConnectionPool(host='{_host(url)}', port=443): Max retries exceeded with url: "
            f'/{url.split("/", 3)[-1]} (Caused by NameResolutionError("<urllib3.connection.HTTPSConnection>: '
            f"Failed to resolve '{_host(url)}' ([Errno -3] Temporary failure in name resolution)\"))"
        )

    return [(curl.Session, "request", curl_request), (requests.Session, "request", requests_request)], calls


def install(kind: str, cache_dir: str) -> None:
    """Patch the HTTP layer of yfinance (curl_cffi) and ccxt (requests) for good: for a subprocess."""
    import yfinance

    yfinance.set_tz_cache_location(cache_dir)
    for target, name, fn in wire(kind)[0]:
        setattr(target, name, fn)
