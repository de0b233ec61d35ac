"""Sources: fetch a token's models list and normalize it, one module per flavor."""
