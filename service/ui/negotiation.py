"""Which answer a request prefers: an HTML page or the API's Collection+JSON."""
from service.api.cj import MEDIA_TYPE


def prefers_html(accept):
    """Does an Accept header prefer text/html to Collection+JSON?

    Each of the two takes the quality of the most specific range that matches it (RFC 9110
    12.5.1). text/html wins when its quality is higher, or equal but named more specifically:
    a browser's `text/html,...,*/*;q=0.8` does, while no header, `*/*`, `application/json` or
    `text/html, application/vnd.collection+json` keep the API's answer."""
    if not accept:
        return False
    ranges = [_media_range(part) for part in accept.split(",")]
    html_q, html_rank = _quality(ranges, ("text", "html"))
    cj_q, cj_rank = _quality(ranges, tuple(MEDIA_TYPE.split("/")))
    return html_q > 0 and (html_q > cj_q or (html_q == cj_q and html_rank > cj_rank))


def _media_range(part):
    """((type, subtype), q) of one Accept element; a q that is not a number in [0, 1] is 0."""
    media, *params = part.split(";")
    kind, _, sub = media.strip().lower().partition("/")
    q = 1.0
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value)
            except ValueError:
                q = 0.0
            q = q if 0.0 <= q <= 1.0 else 0.0
    return (kind, sub.strip()), q


def _quality(ranges, media):
    """(q, rank) of the most specific range matching `media`: rank 2 exact, 1 type/*, 0 */*;
    (0, -1) when none does."""
    best_rank, best_q = -1, 0.0
    for (kind, sub), q in ranges:
        rank = 2 if (kind, sub) == media else 1 if (kind, sub) == (media[0], "*") else 0 if (kind, sub) == ("*", "*") \
            else -1
        if rank > best_rank:
            best_rank, best_q = rank, q
    return best_q, best_rank
