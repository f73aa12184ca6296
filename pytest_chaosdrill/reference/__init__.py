"""Reference targets: real services the drills run against out of the box.

Nothing in the plugin imports these packages; each is reached only through its target file
(``targets/okx_demo_api.yaml``), exactly like a user's own service.
"""
