"""Admin pieces shared by the apps."""

from django.contrib import admin
from django.forms.models import BaseInlineFormSet


class LabelledInlineFormSet(BaseInlineFormSet):
    """A tabular inline names its columns in headings only, and a screen reader (axe: label,
    select-name) finds inputs without a name: each input is named after its field."""

    def add_fields(self, form, index):
        super().add_fields(form, index)
        for field in form.fields.values():
            field.widget.attrs.setdefault("aria-label", field.label)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records staff may look at but never edit: they are written by the services only."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
