"""`recsaver view`: a local, read-only, per-example viewer over run folders.

The report shows aggregates; this shows what the model actually wrote, example by example:
the list (paged, filtered and sorted on the server), one example across runs (prompt, reasoning,
P(1..5), Rec-SAVER candidates and pool, per-example text metrics). `data` reads the runs,
`query` pages the list, `detail` builds one example, `app` serves them.
"""

from .app import create_app, serve
from .data import Viewer

__all__ = ["Viewer", "create_app", "serve"]
