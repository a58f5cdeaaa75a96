"""The Channels tutorial chat (docs.channels "Tutorial", parts 2 and 3), kept stock on purpose.

Run it as the tutorial's readers deploy it, with the layer chosen by TUTORIAL_LAYER:

    TUTORIAL_LAYER=pubsub REDIS_URL=redis://127.0.0.1:6379/0 \\
    DJANGO_SETTINGS_MODULE=bench.peers.tutorial.settings \\
    python -m daphne -b 127.0.0.1 -p 8100 bench.peers.tutorial.asgi:application

Nothing here is tuned: the comparison is with what the tutorial gives everyone, including
the core layer's default capacity (100) and connection pool.
"""
