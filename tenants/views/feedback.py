"""Feedback where the eye is: every submission of the web UI ends in a redirect to the page it
came from, scrolled to the form that made it (``#anchor``), with its outcome shown there.

A refused form is kept in the session for the next GET of that page (what was typed, without
passwords, and its errors), so the page shows it again, errors on its fields, and reloading any
result URL is a plain GET of the page: never a re-submission, never a 405. A message meant for
one form carries the form's anchor as its ``extra_tags`` (``notify``); the page shows it inside
that form's card (``tenants/_messages.html`` with ``place``) and the others at the top.
"""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.contrib import messages
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.forms.utils import ErrorDict
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect

SESSION_KEY = "sluice.refused_forms"
NOT_KEPT = {"csrfmiddlewaretoken"}


def notify(request: HttpRequest, text: str, *, place: str, error: bool = False) -> None:
    """A message shown in the card whose anchor is ``place``."""
    (messages.error if error else messages.success)(request, text, extra_tags=place)


def back_with_refused(
    request: HttpRequest, form: forms.Form, url: str, *, place: str, key: str = ""
) -> HttpResponse:
    """Keep ``form`` (refused) for the next GET of ``url`` and go there, scrolled to ``place``."""
    secret = {
        form.add_prefix(name)
        for name, field in form.fields.items()
        if isinstance(field.widget, forms.PasswordInput)
    }
    kept = {
        name: form.data.getlist(name)
        for name in form.data
        if name not in NOT_KEPT and name not in secret
    }
    stash = request.session.get(SESSION_KEY, {})
    # Kept for this page only: another cluster's or organization's page shows its own forms.
    stash[f"{url}|{key or form.prefix or place}"] = {
        "data": kept,
        "errors": form.errors.get_json_data(),
    }
    request.session[SESSION_KEY] = stash
    return redirect(f"{url}#{place}")


def refused_form(request: HttpRequest, key: str, build: Callable[[QueryDict], forms.Form]):
    """The form refused under ``key`` on the previous submission, rebuilt by ``build`` from what
    was typed and showing the errors it had then (a refusal by a service is not re-run); None
    if there is none. Taken once: the next reload shows the page afresh."""
    stash = request.session.get(SESSION_KEY)
    key = f"{request.path}|{key}"
    if not stash or key not in stash:
        return None
    kept = stash.pop(key)
    request.session[SESSION_KEY] = stash
    data = QueryDict(mutable=True)
    for name, values in kept["data"].items():
        data.setlist(name, values)
    form = build(data)
    # The errors as they were, not as a second validation would find them now.
    form.cleaned_data = {}
    form._errors = ErrorDict()
    for field, errors in kept["errors"].items():
        for error in errors:
            form.add_error(
                None if field == NON_FIELD_ERRORS or field not in form.fields else field,
                ValidationError(error["message"], code=error["code"] or None),
            )
    return form
