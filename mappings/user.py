"""The User resource as served: scim2-models' own, except that an e-mail address is kept
as it was sent.

scim2-models types `emails.value` as pydantic's EmailStr, which refuses addresses that
RFC 5321 allows and directories hold every day (`jane@corp.local` in an Active Directory
forest, `jane@intranet`, an address literal) and rewrites others (the domain lowercased,
an IDNA domain turned into Unicode): a user an identity provider sends would fail to
provision, or be stored under another address than the one the provider filters by.
RFC 7643 §4.1.2 only says the value SHOULD be specified according to RFC 5321; what is
stored is what was sent, and the backend's own column or attribute syntax decides.
"""

from __future__ import annotations

from typing import ClassVar, Generic

import scim2_models
from scim2_models import ComplexAttribute
from scim2_models.resources.resource import AnyExtension


class Email(scim2_models.Email):
    """An e-mail address, as sent."""

    value: str | None = None
    """Email addresses for the user."""


# RFC 7643 §4.1, with `emails` of `Email` above. The docstring is the schema's
# description in /Schemas (RFC 7643 §8.7.1's).
class User(scim2_models.User[AnyExtension], Generic[AnyExtension]):
    """User Account"""

    __schema__ = scim2_models.User.__schema__

    emails: list[Email] | None = None  # type: ignore[assignment]
    """Email addresses for the user."""

    Emails: ClassVar[type[ComplexAttribute]] = Email
