"""The default scheduling plugins, one module each."""
