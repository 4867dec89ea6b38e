"""What `pip install .` installs (the README's first command) is the whole service.

The test suite runs on an editable install, which maps the source folders whole: a
subpackage left out of the wheel (connectors.webhook once was) is only seen by building
the wheel from a clean copy of the sources and running it without the editable install.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bridge", "connectors", "mappings")


def test_the_wheel_holds_every_package_and_preset_and_starts(tmp_path: Path) -> None:
    source = tmp_path / "source"  # no build/ left over from an earlier build
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("*.pyc"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("scim_bridge-*.whl")
    installed = tmp_path / "installed"
    with zipfile.ZipFile(wheel) as archive:
        held = set(archive.namelist())
        archive.extractall(installed)
    sources = {
        str(path.relative_to(source))
        for package in PACKAGES
        for pattern in ("*.py", "*.toml")
        for path in (source / package).rglob(pattern)
    }
    assert sources - held == set()
    # The wheel's files with the dependencies, but without site's .pth files: those hold
    # the editable install's import hook, which would find the sources instead.
    libraries = sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]
    code = (
        "import sys; sys.path[:0] = sys.argv[1:]; import bridge.cli, connectors.webhook; "
        "bridge.cli.main(['--help'])"
    )
    started = subprocess.run(
        [sys.executable, "-S", "-c", code, str(installed), *libraries],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert started.returncode == 0, started.stderr[-2000:]
    assert "serve" in started.stdout
