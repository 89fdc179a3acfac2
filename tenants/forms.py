"""Forms of the web UI. They check the shape of the input; the rules live in the services."""

from __future__ import annotations

import math
from datetime import timedelta

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, SetPasswordMixin
from django.core.exceptions import ValidationError
from django.utils import timezone

from foundation.errors import DomainError
from foundation.text import counted

from .models import User
from .roles import Role, can_grant


def add_domain_error(form: forms.Form, error: DomainError) -> None:
    """Show a service's refusal next to the field it names, or above the form."""
    field = error.extra.get("field")
    form.add_error(field if field in form.fields else None, error.detail)


def grantable_role_choices(granter_role: str) -> list[tuple[str, str]]:
    """The roles a member may hand out, for the choices of a form. The services still decide."""
    return [(value, label) for value, label in Role.choices if can_grant(granter_role, value)]


class LockoutMessageMixin:
    """Says that sign-in is locked out, and for how long, instead of "wrong password"."""

    def get_invalid_login_error(self):
        locked_for = getattr(self.request, "login_locked_for", 0)
        if locked_for:
            minutes = math.ceil(locked_for / 60)
            return ValidationError(
                "Too many failed sign-ins for this account or from your network: try again in"
                f" {counted(minutes, 'minute')}, or reset your password.",
                code="locked_out",
            )
        return super().get_invalid_login_error()

    @property
    def locked_out(self) -> bool:
        return bool(getattr(self.request, "login_locked_for", 0))


class LoginForm(LockoutMessageMixin, AuthenticationForm):
    pass


class AdminLoginForm(LockoutMessageMixin, AdminAuthenticationForm):
    pass


class SignupForm(forms.Form):
    email = forms.EmailField(
        label="E-mail address",
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )
    first_name = forms.CharField(label="First name", max_length=150, required=False)
    last_name = forms.CharField(label="Last name", max_length=150, required=False)


class SignupPasswordForm(SetPasswordMixin, forms.Form):
    """The password of an account whose address was just confirmed."""

    password1, password2 = SetPasswordMixin.create_password_fields()

    def __init__(self, *args, details: dict, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.details = details

    def clean(self):
        cleaned = super().clean()
        self.validate_passwords()
        # The similarity validator compares the password with the person's own details.
        self.validate_password_for_user(
            User(
                email=self.details["email"],
                first_name=self.details["first_name"],
                last_name=self.details["last_name"],
            )
        )
        return cleaned


class OrganizationForm(forms.Form):
    name = forms.CharField(label="Organization name", max_length=100)


class CloseOrganizationForm(forms.Form):
    confirm = forms.CharField(
        label="Type the organization's name to confirm",
        max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )


class GrantsRoleMixin:
    """A form whose ``role`` field grants a role: it offers only the roles the granter may
    grant, developer preselected."""

    def __init__(self, *args, granter_role: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = grantable_role_choices(granter_role)
        self.fields["role"].initial = Role.DEVELOPER


class InvitationForm(GrantsRoleMixin, forms.Form):
    email = forms.EmailField(label="E-mail address")
    role = forms.ChoiceField(label="Role")


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class ApiKeyForm(GrantsRoleMixin, forms.Form):
    EXPIRY_CHOICES = [
        ("", "Never"),
        ("7", "In 7 days"),
        ("30", "In 30 days"),
        ("90", "In 90 days"),
        ("365", "In one year"),
    ]

    name = forms.CharField(label="Name", max_length=100, help_text="What the key is for.")
    role = forms.ChoiceField(label="Role")
    expires_in_days = forms.TypedChoiceField(
        label="Expires",
        choices=EXPIRY_CHOICES,
        coerce=int,
        empty_value=None,
        required=False,
    )

    @property
    def expires_at(self):
        days = self.cleaned_data.get("expires_in_days")
        return None if days is None else timezone.now() + timedelta(days=days)


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(label="Action", required=False)
    actor = forms.ChoiceField(label="Actor", required=False)

    def __init__(self, *args, actions: list[str], actors: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [("", "All actions")] + [(a, a) for a in actions]
        self.fields["actor"].choices = [("", "Everyone")] + [(a, a) for a in actors]
