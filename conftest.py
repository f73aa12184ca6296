"""Repo-level wiring: this repository's own drills (drills/) run against the reference target
okx_demo_api, set in pyproject.toml (``chaosdrill_target``); ``--chaosdrill-target`` points the same
drills at another service. The plugin itself comes from the ``pytest11`` entry point."""

pytest_plugins = ["pytester"]  # the plugin's own end-to-end tests run pytest in pytest
