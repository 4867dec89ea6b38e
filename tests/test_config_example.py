"""The shipped example configuration and the README's examples stay loadable."""

from __future__ import annotations

import pathlib
import re

from readme import readme_block

from bridge.config import load_config
from mappings import load_mapping, preset_names

REPOSITORY = pathlib.Path(__file__).parent.parent


def test_config_example_loads_and_names_a_shipped_preset() -> None:
    settings = load_config(REPOSITORY / "config.example.toml")
    assert settings.mapping_source() in preset_names()
    mapping = load_mapping(settings.mapping_source())
    assert mapping.groups is not None
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8080)
    assert settings.server.base_path == "/scim/v2"
    assert settings.server.public_url is None
    assert [token.env for token in settings.auth.tokens] == ["SCIM_BRIDGE_TOKEN"]
    assert settings.connector.url == "sqlite+aiosqlite:///scim-bridge.db"
    assert settings.connector.create_tables


def test_readme_configuration_example_loads(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(readme_block("sql-config"))
    assert load_config(path).mapping == "sql-default"


def test_readme_mapping_example_loads(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "people.toml"
    path.write_text(readme_block("mapping-example"))
    mapping = load_mapping(path)
    assert mapping.backend.users.object == "people"
    assert mapping.backend.users.constants == {"source": "scim"}
    assert mapping.backend.memberships is not None
    assert mapping.backend.memberships.object == "team_members"


def test_readme_lists_the_shipped_presets() -> None:
    readme = (REPOSITORY / "README.md").read_text()
    listed = re.search(r"A preset shipped with scim-bridge \(([^)]*)\)", readme)
    assert listed is not None
    assert listed[1] == ", ".join(f"`{name}`" for name in preset_names())


def test_readme_extension_example_loads(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "hr.toml"
    path.write_text(readme_block("extension-example"))
    users = load_mapping(path).users
    urn = "urn:example:params:scim:schemas:extension:hr:2.0:User"
    assert urn in users.model.get_extension_models()
    assert set(users.announced()[urn]) == {"startDate", "badges"}


def test_readme_deprovisioning_example_loads(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        'mapping = "ldap-openldap"\n[[auth.tokens]]\nenv = "T"\n'
        '[connector]\ntype = "ldap"\nurls = ["ldap://127.0.0.1"]\n'
        + readme_block("deprovisioning-example")
    )
    settings = load_config(path)
    assert (settings.users.on_delete, settings.users.archive) == ("move", "ou=archive")
    assert settings.users.on_deactivate == "disable"
    assert settings.groups.on_delete == "delete"


def test_readme_webhook_example_loads(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(readme_block("webhook-config"))
    settings = load_config(path)
    assert settings.destinations() == {"users": ["hr-events"], "groups": ["hr-events", "audit"]}
    assert settings.webhooks["audit"].synchronous


def test_readme_verification_example_accepts_a_real_delivery() -> None:
    import base64

    from connectors.webhook.signing import signed_headers

    readme = (REPOSITORY / "README.md").read_text()
    code = readme.split("### Verifying a delivery", 1)[1].split("```python\n", 1)[1]
    namespace: dict[str, object] = {}
    exec(code.split("```", 1)[0], namespace)  # noqa: S102 - the README's own example
    verify = namespace["verify"]
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    body = b'{"type":"user.created"}'
    headers = signed_headers(b"k" * 32, "msg_1", body)
    assert verify(secret, headers, body)  # type: ignore[operator]
    assert not verify(secret, headers, body + b"x")  # type: ignore[operator]
