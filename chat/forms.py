"""Forms of the chat pages."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.core.validators import RegexValidator

from realtime import NAME_PATTERN

from .models import Room


class RoomForm(forms.ModelForm):
    class Meta:
        model = Room
        fields = ["name", "title"]
        help_texts = {"name": "Letters, digits, '_', '.' and '-'; it becomes part of the address."}


class SignUpForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        fields = ["username"]


class GroupForm(forms.Form):
    """A new private group: `group:<name>`, owned by whoever creates it."""

    name = forms.CharField(
        max_length=64,
        validators=[RegexValidator(f"^{NAME_PATTERN}$", "Letters, digits, '_', '.' and '-' only.")],
        help_text="Letters, digits, '_', '.' and '-'. Only members can read it.",
    )
    title = forms.CharField(max_length=120, required=False)
