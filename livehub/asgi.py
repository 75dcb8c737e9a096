"""``hypercorn --worker-class trio livehub.asgi:app``: the app from the environment."""

from livehub.http import create_app
from livehub.node.gctune import tune_gc

app = create_app()
tune_gc()
