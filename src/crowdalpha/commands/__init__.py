"""One module per ``crowdalpha`` sub-command; each only parses, calls, and renders."""
