"""The read-only status pages and feed the daemon's listener serves, and `report --html`.

The same pipeline as everywhere else, at its read end. `status`, `matrix`, `timeline`
and `report` read the database through small queries and build frozen view models:
plain data the templates only have to print, so the pages, the feed and the report
show the same thing and the logic is tested without HTML. Every string that came from
a gateway stays a plain `str` in them; `render` turns them into HTML with autoescaping
Jinja2 templates (nothing marks upstream text as safe), `feed` into Atom 1.0, and `app`
routes listener requests to them. Nothing here writes to the database, and nothing here
ever sees a token value: tokens are names.
"""
