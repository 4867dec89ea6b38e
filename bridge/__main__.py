"""`python -m bridge`: the `scim-bridge` command without the console script."""

from bridge.cli import main

raise SystemExit(main())
