"""The `dcman` command: the site process, account administration and the API client."""
