"""The drill test module the plugin collects by itself when a project has none of its own.

``pytest -m phase2 --chaosdrill-target my.yaml`` in any repository runs the bundled drills through
this module; a project that wants its own module writes the same two lines (docs/targets.md).
"""


def test_drill(chaosdrill_run):
    chaosdrill_run.execute()
