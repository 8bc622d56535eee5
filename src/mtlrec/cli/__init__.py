"""The ``mtlrec`` command line."""
