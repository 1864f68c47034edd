"""crowdalpha: an open-source, self-hostable server for crowdsourced prediction tournaments."""

__version__ = "0.1.0"
