"""threaded_service: a small OKX-v5-style trading service built from threads, ``requests`` and
``websocket-client``, written as an independent example target for pytest-chaosdrill."""
