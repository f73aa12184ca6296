"""okx_demo_api: the reference target, a small asyncio trading service that honours the status contract.

Run it with ``python -m pytest_chaosdrill.okx_demo_api`` or ``chaosdrill target`` (see
``docs/okx_demo_api.md``).
"""
