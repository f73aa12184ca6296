"""okx_demo_api: the reference target, a small asyncio trading service that honours the status contract.

Run it with ``python -m okx_demo_api`` (see
``docs/okx_demo_api.md``).
"""
