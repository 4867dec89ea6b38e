"""scim-bridge: a SCIM 2.0 service (RFC 7643, RFC 7644) in front of existing directories.

The aiohttp application, the SCIM protocol, configuration and the command line live here;
translation lives in `mappings`, storage in `connectors`.
"""
