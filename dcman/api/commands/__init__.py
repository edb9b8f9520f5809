"""Each write request's fields as the clients spell them, parsed once into a typed command
(dcman.domain.commands), and the same declarations as the request schemas /openapi.json shows:
one module per resource, on the declarations of `wire`. The only place that knows the wire
spellings."""
