"""Names in the request's language. Areas, categories, departments and teams carry a Chinese `name` and
(some of them) an English `name_en`; English is shown when the active language is English and the row has
one, the Chinese name otherwise."""

from django.db.models import F, Value
from django.db.models.expressions import Expression
from django.db.models.functions import Coalesce, NullIf
from django.utils.translation import get_language


def language_is_english() -> bool:
    return (get_language() or "").lower().startswith("en")


def name_localized(obj=None, *, name: str | None = None, name_en: str | None = None) -> str:
    """The name of `obj` (anything with `name` and maybe `name_en`), or of the given values, in the active
    language."""
    if obj is not None:
        name, name_en = obj.name, getattr(obj, "name_en", "")
    if name_en and language_is_english():
        return name_en
    return name or ""


def name_localized_expr(prefix: str = "") -> Expression:
    """The same choice as an ORM expression over `<prefix>name` / `<prefix>name_en` (e.g. prefix
    "category__"), decided for the active language when the query is built."""
    if language_is_english():
        return Coalesce(NullIf(F(f"{prefix}name_en"), Value("")), F(f"{prefix}name"))
    return F(f"{prefix}name")
