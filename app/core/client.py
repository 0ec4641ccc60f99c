from starlette.requests import Request


def client_address(request: Request, proxy_hops: int) -> str:
    """The caller's address, which a client cannot forge.

    With `proxy_hops` proxies in front that each append to X-Forwarded-For, the address is
    the entry they appended last-but-`proxy_hops`-1 counting from the right; entries further
    left were written by the client. With no hops, the connection's peer (which uvicorn has
    already taken from X-Forwarded-For when the peer is in FORWARDED_ALLOW_IPS).
    """
    if proxy_hops:
        forwarded = [
            part.strip()
            for header in request.headers.getlist("x-forwarded-for")
            for part in header.split(",")
            if part.strip()
        ]
        if len(forwarded) >= proxy_hops:
            return forwarded[-proxy_hops]
    return request.client.host if request.client else "unknown"
