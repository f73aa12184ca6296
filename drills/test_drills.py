"""The drills: one parametrized test, a test id per drill and backend.

The drill definitions are the data files beside this module; pytest-chaosdrill's plugin
parametrizes ``drill`` over them (see docs/drills.md).
"""


def test_drill(drill_run):
    drill_run.execute()
