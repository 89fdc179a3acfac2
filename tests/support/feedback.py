"""Reading what a refused form shows, the way a browser gets there: the submission answers a
redirect to its page scrolled to the form (``#anchor``), and the page shows the form again."""


def refused_page(client, response, page: str, anchor: str) -> str:
    """The page a refused submission (``response``) sends to, as HTML, after checking it is a
    redirect to ``page#anchor``: never a page drawn at the submit URL, which a reload would
    post again or answer with a 405."""
    assert response.status_code == 302, response.status_code
    assert response["Location"] == f"{page}#{anchor}"
    return client.get(response["Location"]).content.decode()
