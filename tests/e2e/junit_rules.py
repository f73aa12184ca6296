"""The structure rules of the JUnit schema that pytest's xunit2 family targets (Surefire's junit-10 XSD),
checked without an XSD processor: which elements may appear where and which attributes are required."""
from __future__ import annotations

import xml.etree.ElementTree as ET

TESTCASE_CHILDREN = {"skipped", "error", "errors", "failure", "rerunFailure", "rerunError", "flakyFailure",
                     "flakyError", "system-out", "system-err"}
TESTSUITE_CHILDREN = {"testsuite", "properties", "testcase", "system-out", "system-err"}
REQUIRED = {"testsuite": ("name", "tests", "failures", "errors"), "testcase": ("name",), "property": ("name", "value")}


def junit10_problems(root: ET.Element) -> list[str]:
    """Every place where ``root`` (a ``testsuites`` or ``testsuite`` element) breaks the rules."""
    problems = []
    suites = list(root) if root.tag == "testsuites" else [root]
    for suite in suites:
        if suite.tag != "testsuite":
            problems.append(f"<{root.tag}> may hold only <testsuite>, found <{suite.tag}>")
            continue
        for el in suite.iter():
            for attr in REQUIRED.get(el.tag, ()):
                if attr not in el.attrib:
                    problems.append(f"<{el.tag}> lacks the required attribute {attr!r}")
        for child in suite:
            if child.tag not in TESTSUITE_CHILDREN:
                problems.append(f"<testsuite> may not hold <{child.tag}>")
            if child.tag == "properties":
                problems += [f"<properties> may hold only <property>, found <{p.tag}>" for p in child if p.tag != "property"]
            if child.tag == "testcase":
                problems += [f"<testcase name={child.get('name')!r}> may not hold <{c.tag}>"
                             for c in child if c.tag not in TESTCASE_CHILDREN]
    return problems
