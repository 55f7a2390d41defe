"""Forms of the chat pages."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import UserCreationForm

from .models import Room


class RoomForm(forms.ModelForm):
    class Meta:
        model = Room
        fields = ["name", "title"]
        help_texts = {"name": "Letters, digits, '_', '.' and '-'; it becomes part of the address."}


class SignUpForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        fields = ["username"]
