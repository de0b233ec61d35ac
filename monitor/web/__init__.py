"""The read-only status pages and feed the daemon's listener serves, and `report --html`.

The same pipeline as everywhere else, at its read end: `views` reads the database
through small queries and builds frozen view models, `render` turns them into HTML
with autoescaping Jinja2 templates, `feed` into Atom 1.0, `app` routes listener
requests to them, and `report` writes one static file. Nothing here writes to the
database, and nothing here ever sees a token value: tokens are names.
"""
