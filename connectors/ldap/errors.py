"""ldap3 errors to the connector error family, at one place.

Nothing of the directory's own text reaches a client: a diagnostic message is read only
to find which attribute was refused, and that name is passed on only when it is one of
the fields the mapping knows (the bridge shows the SCIM attribute it maps).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterator
from contextlib import contextmanager

from ldap3.core import exceptions as ldap_errors

from connectors.base import (
    Conflict,
    ConnectorError,
    InvalidValue,
    NotFound,
    Unavailable,
)

log = logging.getLogger("scim_bridge.ldap")

UNREACHABLE: tuple[type[Exception], ...] = (
    ldap_errors.LDAPCommunicationError,
    ldap_errors.LDAPServerPoolExhaustedError,
    ldap_errors.LDAPResponseTimeoutError,
    ldap_errors.LDAPSocketOpenError,
    ldap_errors.LDAPStartTLSError,
)
"""The server could not be reached, or stopped answering: the connection is dropped."""

_BUSY = (
    ldap_errors.LDAPBusyResult,
    ldap_errors.LDAPUnavailableResult,
    ldap_errors.LDAPTimeLimitExceededResult,
    ldap_errors.LDAPAdminLimitExceededResult,
    ldap_errors.LDAPOtherResult,
)
_REFUSED_VALUE = (
    ldap_errors.LDAPConstraintViolationResult,
    ldap_errors.LDAPObjectClassViolationResult,
    ldap_errors.LDAPInvalidAttributeSyntaxResult,
    ldap_errors.LDAPUndefinedAttributeTypeResult,
    ldap_errors.LDAPNamingViolationResult,
    ldap_errors.LDAPNotAllowedOnRDNResult,
    ldap_errors.LDAPAttributeOrValueExistsResult,
    ldap_errors.LDAPNoSuchAttributeResult,
    ldap_errors.LDAPInappropriateMatchingResult,
    ldap_errors.LDAPInvalidDNSyntaxResult,
    ldap_errors.LDAPObjectClassModsProhibitedResult,
)
_NAMED_ATTRIBUTE = (
    re.compile(r"attribute '([A-Za-z][\w-]*)'"),
    re.compile(r"^([A-Za-z][\w-]*)\s*:"),
    re.compile(r"\b([A-Za-z][\w-]*): value #\d"),
)


class DirectoryUnavailable(Unavailable):
    """Raised after the bounded reconnect attempts have all failed."""


class CredentialsRefused(ConnectorError):
    """The directory refused the bind DN and password: the connector, when it opens,
    names the settings to mend (a client is told no more than this message)."""


def refused_attribute(message: str, known: Collection[str]) -> str | None:
    """The mapped field a diagnostic message names, compared case-insensitively."""
    by_lower = {name.lower(): name for name in known}
    for pattern in _NAMED_ATTRIBUTE:
        for found in pattern.findall(message or ""):
            if found.lower() in by_lower:
                return by_lower[found.lower()]
    return None


@contextmanager
def translated_errors(known_fields: Collection[str], retry_after: int) -> Iterator[None]:
    """Raise ldap3's errors as ConnectorError; log the directory's text for operators."""
    try:
        yield
    except ConnectorError:
        raise
    except ldap_errors.LDAPEntryAlreadyExistsResult:
        raise Conflict("an entry with this name already exists") from None
    except ldap_errors.LDAPNoSuchObjectResult:
        raise NotFound("the directory has no such entry") from None
    except _REFUSED_VALUE as error:
        message = str(getattr(error, "message", "") or "")
        log.info("the directory refused a value (%s): %s", type(error).__name__, message)
        field = refused_attribute(message, known_fields)
        raise InvalidValue("the directory refused this value", field=field) from None
    except _BUSY as error:
        log.warning("the directory is busy: %s", type(error).__name__)
        raise Unavailable("the directory is busy; retry later", retry_after=retry_after) from None
    except UNREACHABLE as error:
        log.warning("the directory cannot be reached: %s", type(error).__name__)
        raise Unavailable(
            "the directory cannot be reached; retry later", retry_after=retry_after
        ) from None
    except (
        ldap_errors.LDAPInvalidCredentialsResult,
        ldap_errors.LDAPInappropriateAuthenticationResult,
    ):
        log.error("the directory refused the bind DN's credentials")
        raise CredentialsRefused(
            "the directory refused the service account's credentials"
        ) from None
    except ldap_errors.LDAPStrongerAuthRequiredResult:
        log.error(
            "the directory requires authentication for this operation (strongerAuthRequired): "
            "set connector.bind_dn and password_env to an account that may write (an "
            "anonymous connection may not)"
        )
        raise ConnectorError("the directory requires the service to authenticate") from None
    except ldap_errors.LDAPConfidentialityRequiredResult:
        log.error(
            "the directory requires an encrypted connection (confidentialityRequired): "
            "use ldaps:// URLs or connector.start_tls"
        )
        raise ConnectorError("the directory requires an encrypted connection") from None
    except ldap_errors.LDAPInsufficientAccessRightsResult:
        log.error("the bind DN may not do this; check the directory's access rules")
        raise ConnectorError("the directory refused access to the service account") from None
    except ldap_errors.LDAPException as error:
        log.error("directory error: %s", type(error).__name__)
        raise ConnectorError("the directory refused the operation") from None
