"""Which X-Forwarded-* headers count: only those set by a proxy the site trusts.

A client talking to the API directly could otherwise choose the host in `Location` or the
address that login throttling and the logs see. `server.trusted_proxies` lists the proxies'
addresses or networks (default: none).
"""
import ipaddress


def networks(entries):
    """Parse the setting; ValueError names a bad entry."""
    found = []
    for entry in entries:
        try:
            found.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"not an address or network: {entry!r}") from None
    return found


def _trusted(address, trusted):
    if not trusted:     # the usual case, and every request asks: no address to parse
        return False
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return False
    return any(ip in net for net in trusted)


def _first(environ, header):
    return (environ.get(header) or "").split(",")[0].strip()


def view(environ, trusted):
    """(scheme, host, client address) as the client sees them: the forwarded ones when the
    peer is a trusted proxy, the connection's own otherwise."""
    peer = environ.get("REMOTE_ADDR", "")
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME', '')}:{environ.get('SERVER_PORT', '')}"
    if not _trusted(peer, trusted):
        return scheme, host, peer
    # X-Forwarded-For: the right-most address that is not one of our proxies made the request
    chain = [a.strip() for a in (environ.get("HTTP_X_FORWARDED_FOR") or "").split(",") if a.strip()]
    client = next((a for a in reversed(chain) if not _trusted(a, trusted)), chain[0] if chain else peer)
    return (_first(environ, "HTTP_X_FORWARDED_PROTO") or scheme,
            _first(environ, "HTTP_X_FORWARDED_HOST") or host, client)
