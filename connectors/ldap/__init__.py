"""The LDAP connector: users and groups in an existing directory, through ldap3."""

from connectors.ldap.connector import LdapConnector
from connectors.ldap.settings import LdapSettings

__all__ = ["LdapConnector", "LdapSettings"]
