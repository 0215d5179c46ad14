"""``python -m workers.google_analytics validate FILE`` (see :mod:`.validate`)."""

from .validate import main

main()
