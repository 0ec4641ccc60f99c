"""Logic that is neither a route nor a table: accounts, tokens, the login throttle."""
