"""Ray wiring, configuration and command line: the only package that knows every stage."""
