"""The annual follow-up as a document: ``pbxwatch report --format html|pdf``.

``document`` builds every unit's figures for the period and the period
before it (``details`` adds what the store's figures lack: answered within
N rings, the answer-time and ring distributions, the missing-forward share
per month); ``render`` turns that JSON shape into HTML (Jinja2, inline SVG
charts from ``svg``) and the HTML into PDF (WeasyPrint).  HTML, PDF and
``--format json`` are made from the same JSON, so they show the same numbers.
``worker`` makes those bytes (``worker.make``, which ``pbxwatch report``
calls too) and, for the console, in a child process, off the loop that
reads the AMI stream.
"""
