"""``hypercorn --worker-class trio livehub.asgi:app``: the app from the environment."""

from .http import create_app

app = create_app()
