"""``hypercorn --worker-class trio livehub.asgi:app``: the app from the environment."""

from .gctune import tune_gc
from .http import create_app

app = create_app()
tune_gc()
