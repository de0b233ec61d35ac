"""Helpers the tests share. Nothing here is a test, and no test module imports another
test module: what two tests need lives here."""
