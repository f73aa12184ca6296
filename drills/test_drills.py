"""The drills: one parametrized test, a test id per drill and backend.

The drill definitions are the data files beside this module; pytest-chaosdrill parametrizes
``chaosdrill_drill`` over them (see docs/drills.md). A project with its own drill folder writes
these same lines, or none at all (the plugin then collects its bundled copy).
"""


def test_drill(chaosdrill_run):
    chaosdrill_run.execute()
